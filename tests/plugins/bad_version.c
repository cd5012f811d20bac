/* A plugin built against a future ABI: weft must refuse it by version, naming both, before calling
 * anything in it. Only the header fields are meaningful. */
#include <weft/transport.h>

__attribute__((visibility("default"))) const weft_transport_v1_t weft_transport_v1 = {
    .abi_version = 99,
    .struct_size = sizeof(weft_transport_v1_t),
    .name = "future",
};

/* The C header alone, compiled as C: version and error strings through pkg-config's flags. */
#include <stdio.h>
#include <weft/weft.h>

int main(void) {
  int v = 0;
  if (weftGetVersion(&v) != weftSuccess || v != WEFT_VERSION_CODE) return 1;
  printf("weft %d: %s\n", v, weftGetErrorString(weftTimeout));
  return 0;
}

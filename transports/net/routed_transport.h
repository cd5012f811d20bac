// One transport per kind of peer: ranks on this host through shared memory, the others through a
// network plugin. The engine sees one Transport; each endpoint comes from the transport that
// reaches that peer.
#pragma once

#include <memory>
#include <vector>

#include "engine/transport.h"

namespace weft {

// `local` serves the ranks in `localRanks` (communicator ranks, in the order `local` numbers them;
// this rank among them); `remote` serves every other rank by its communicator rank.
std::unique_ptr<Transport> makeRoutedTransport(std::unique_ptr<Transport> local,
                                               std::vector<int> localRanks,
                                               std::unique_ptr<Transport> remote, int nranks);

}  // namespace weft

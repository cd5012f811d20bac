#include <weft/weft.hpp>
#include <cstdio>
#include <vector>
int main() {
  weft::Communicator comm = weft::Communicator::fromEnv();
  std::vector<float> v(4, 1.0f + comm.rank());
  comm.allReduce(std::span<const float>(v), std::span<float>(v));
  std::printf("rank %d: %g\n", comm.rank(), v[0]);
}

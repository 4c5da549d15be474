// Receiving for the batched UDP socket: one recvmmsg into an arena of 64 slots, GRO buffers
// split into the datagrams they merged, sources formatted once per batch. No N-API here.
#pragma once
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "udp-send.h"  // SOL_UDP, UDP_GRO

class BatchReceiver {
 public:
  static constexpr int kBatch = 64;             // messages (datagrams or GRO buffers) per recvmmsg
  static constexpr size_t kMaxSegments = 64;    // datagrams in one GRO buffer at most (UDP_GRO_CNT_MAX)

  bool gro = false;  // the socket has UDP_GRO: a message may hold several datagrams
  double datagramsIn = 0, batchesIn = 0, groBuffers = 0, errors = 0;

  // One recvmmsg; returns the messages read (0 when none were waiting, -1 on an error).
  // Afterwards: Bytes() of them back to back, and per datagram a (length, port, host index) triple.
  int Receive(int fd);
  size_t Bytes() const { return total_; }
  void CopyTo(uint8_t* dst) const;
  const std::vector<uint32_t>& Triples() const { return triples_; }
  const std::vector<std::string>& Hosts() const { return hosts_; }
  void Release() { arena_.reset(); }

 private:
  uint32_t HostIndex(const sockaddr_storage& ss, socklen_t len, uint16_t* port);
  std::unique_ptr<uint8_t[]> arena_;   // kBatch slots of 64 KB; pages are touched only as datagrams fill them
  size_t lens_[kBatch] = {};           // bytes per slot of the last batch (0: none or truncated)
  int count_ = 0;
  size_t total_ = 0;
  std::vector<uint32_t> triples_;
  std::vector<std::string> hosts_;
};

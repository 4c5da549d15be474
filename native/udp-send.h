// Sending for the batched UDP socket: sendmmsg over a turn's datagrams, GSO where granted,
// and a bounded queue for what the kernel would not take yet (EAGAIN).
#pragma once
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>

// Older C libraries lack the names; the kernel numbers are fixed (linux/udp.h). A kernel
// without the options refuses them, and the socket then works without GSO/GRO.
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

// One datagram to send: a destination and a header and payload (iov[1] may be empty), which
// stay the caller's: nothing keeps a pointer to them after Send returns.
struct Datagram {
  const sockaddr_storage* addr;
  socklen_t alen;
  iovec iov[2];
};

// Parses an IP address (IPv4 as ::ffff:a.b.c.d on an IPv6 socket) and port into a sockaddr.
bool ParseAddress(const char* host, uint16_t port, bool v6, sockaddr_storage* ss, socklen_t* len);

class BatchSender {
 public:
  int fd = -1;
  bool gso = false;  // UDP_SEGMENT is used; cleared when the kernel refuses a segmented send
  double datagrams = 0, calls = 0, gsoSends = 0, queuedTotal = 0, errors = 0;
  // sendmmsg calls of every socket in the process: a receive loop reads again when a batch's
  // callback sent something (on loopback, the answer to it may already be waiting).
  static inline uint64_t processCalls = 0;

  // Sends (or queues, behind anything already queued) n datagrams; returns how many failed.
  uint32_t Send(const Datagram* d, size_t n);
  // Writes queued datagrams until the queue is empty or the socket is full again.
  void Drain();
  bool Pending() const { return !queue_.empty(); }
  void Clear();

 private:
  struct Owned {
    sockaddr_storage addr;
    socklen_t alen;
    std::vector<uint8_t> bytes;
  };
  // Writes d[0..n); returns how many were consumed (sent or failed) before EAGAIN.
  size_t Write(const Datagram* d, size_t n, uint32_t* failed);
  uint32_t Queue(const Datagram* d, size_t n);
  std::deque<Owned> queue_;
  std::vector<iovec> iovs_;
  size_t queuedBytes_ = 0;
};

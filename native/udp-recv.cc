// See udp-recv.h. Nothing here reads datagram contents: only the kernel's lengths, source
// addresses (inet_ntop) and GRO segment sizes.
#ifdef __linux__
#include "udp-recv.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace {
constexpr size_t kSlot = 65536;  // one UDP datagram at most, or one GRO buffer
}

int BatchReceiver::Receive(int fd) {
  if (!arena_) arena_.reset(new (std::nothrow) uint8_t[kSlot * kBatch]);
  if (!arena_) return -1;
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage from[kBatch];
  alignas(cmsghdr) char ctrl[kBatch][CMSG_SPACE(sizeof(int))];
  for (int i = 0; i < kBatch; i++) {
    iov[i] = {arena_.get() + i * kSlot, kSlot};
    msgs[i].msg_hdr = {&from[i], sizeof from[i], &iov[i], 1, gro ? ctrl[i] : nullptr, gro ? sizeof ctrl[i] : 0, 0};
    msgs[i].msg_len = 0;
  }
  int n;
  do n = recvmmsg(fd, msgs, kBatch, 0, nullptr);
  while (n < 0 && errno == EINTR);
  triples_.clear();
  hosts_.clear();
  count_ = 0;
  total_ = 0;
  if (n <= 0) {
    if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    errors++;  // e.g. a queued ICMP error
    return -1;
  }
  count_ = n;
  for (int i = 0; i < n; i++) {
    const msghdr& h = msgs[i].msg_hdr;
    const size_t len = msgs[i].msg_len;
    lens_[i] = 0;
    if (h.msg_flags & MSG_TRUNC) { errors++; continue; }  // cannot happen with 64 KB slots
    lens_[i] = len;
    total_ += len;
    uint16_t port = 0;
    const uint32_t host = HostIndex(from[i], h.msg_namelen, &port);
    size_t seg = len;
    if (gro) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO) continue;
        int g;
        memcpy(&g, CMSG_DATA(c), sizeof g);
        if (g > 0) seg = static_cast<size_t>(g);
      }
    }
    size_t at = 0;
    do {  // one triple per datagram (an empty datagram included)
      const size_t l = len - at < seg ? len - at : seg;
      triples_.insert(triples_.end(), {static_cast<uint32_t>(l), port, host});
      at += l;
    } while (at < len);
    if (seg < len) groBuffers++;
  }
  if (triples_.size() > 3 * kBatch * kMaxSegments) {  // more than the kernel ever merges: keep what fits
    errors++;
    triples_.resize(3 * kBatch * kMaxSegments);
  }
  if (!triples_.empty()) {
    datagramsIn += static_cast<double>(triples_.size() / 3);
    batchesIn++;
  }
  return n;
}

void BatchReceiver::CopyTo(uint8_t* dst) const {
  for (int i = 0; i < count_; i++) {
    memcpy(dst, arena_.get() + i * kSlot, lens_[i]);
    dst += lens_[i];
  }
}

// The index of a source among this batch's distinct hosts, as text (IPv4 on an IPv6 socket
// reads ::ffff:a.b.c.d, as node:dgram reports it).
uint32_t BatchReceiver::HostIndex(const sockaddr_storage& ss, socklen_t len, uint16_t* port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    *port = ntohs(s6->sin6_port);
    inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof text);
  } else if (ss.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    *port = ntohs(s4->sin_port);
    inet_ntop(AF_INET, &s4->sin_addr, text, sizeof text);
  }
  for (uint32_t i = 0; i < hosts_.size(); i++) if (hosts_[i] == text) return i;
  hosts_.emplace_back(text);
  return static_cast<uint32_t>(hosts_.size() - 1);
}

#endif  // __linux__

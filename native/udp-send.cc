// See udp-send.h.
#ifdef __linux__
#include "udp-send.h"

#include <arpa/inet.h>
#include <netinet/udp.h>

#include <cerrno>
#include <cstring>

namespace {

constexpr size_t kMsgs = 64;           // messages per sendmmsg
constexpr size_t kMaxSegments = 64;    // the kernel's UDP_MAX_SEGMENTS
constexpr size_t kMaxGso = 65000;      // bytes of one segmented send (an IP packet's payload, with room)
constexpr size_t kQueueBytes = 4 << 20;  // what EAGAIN may leave queued; beyond it datagrams are dropped

size_t Length(const Datagram& d) { return d.iov[0].iov_len + d.iov[1].iov_len; }

bool SameAddr(const Datagram& a, const Datagram& b) {
  return a.addr == b.addr || (a.alen == b.alen && memcmp(a.addr, b.addr, a.alen) == 0);
}

}  // namespace

bool ParseAddress(const char* host, uint16_t port, bool v6, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  if (!v6) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    *len = sizeof *s4;
    return inet_pton(AF_INET, host, &s4->sin_addr) == 1;
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(port);
  *len = sizeof *s6;
  if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) return true;
  in_addr a4;
  if (inet_pton(AF_INET, host, &a4) != 1) return false;
  s6->sin6_addr.s6_addr[10] = 0xff;
  s6->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&s6->sin6_addr.s6_addr[12], &a4, 4);
  return true;
}

uint32_t BatchSender::Send(const Datagram* d, size_t n) {
  datagrams += static_cast<double>(n);
  if (!queue_.empty()) Drain();
  if (!queue_.empty()) return Queue(d, n);  // keep the order
  uint32_t failed = 0;
  size_t done = Write(d, n, &failed);
  return failed + Queue(d + done, n - done);
}

size_t BatchSender::Write(const Datagram* d, size_t n, uint32_t* failed) {
  if (fd < 0) {
    *failed += static_cast<uint32_t>(n);
    errors += static_cast<double>(n);
    return n;
  }
  std::vector<iovec>& iovs = iovs_;  // contiguous, so a run of datagrams is one message's iovec
  iovs.resize(2 * n);
  for (size_t j = 0; j < n; j++) {
    iovs[2 * j] = d[j].iov[0];
    iovs[2 * j + 1] = d[j].iov[1];
  }
  mmsghdr msgs[kMsgs];
  size_t first[kMsgs], count[kMsgs];
  alignas(cmsghdr) char ctrl[kMsgs][CMSG_SPACE(sizeof(uint16_t))];
  size_t i = 0, plainUntil = 0;  // datagrams before plainUntil go out unsegmented (a refused run)
  while (i < n) {
    size_t m = 0, j = i;
    while (j < n && m < kMsgs) {
      const size_t seg = Length(d[j]);
      size_t k = 1, total = seg;
      if (gso && seg > 0 && j >= plainUntil) {
        while (j + k < n && k < kMaxSegments && SameAddr(d[j], d[j + k])) {
          const size_t l = Length(d[j + k]);
          if (l == 0 || l > seg || total + l > kMaxGso) break;
          total += l;
          k++;
          if (l < seg) break;  // only the last segment may be shorter
        }
      }
      msghdr& h = msgs[m].msg_hdr;
      h = {const_cast<sockaddr_storage*>(d[j].addr), d[j].alen, &iovs[2 * j], 2 * k, nullptr, 0, 0};
      if (k > 1) {
        h.msg_control = ctrl[m];
        h.msg_controllen = sizeof ctrl[m];
        cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        const uint16_t size = static_cast<uint16_t>(seg);
        memcpy(CMSG_DATA(c), &size, sizeof size);
      }
      first[m] = j;
      count[m] = k;
      m++;
      j += k;
    }
    const int r = sendmmsg(fd, msgs, static_cast<unsigned>(m), 0);
    calls++;
    processCalls++;
    if (r > 0) {
      for (int t = 0; t < r; t++) if (count[t] > 1) gsoSends++;
      i = first[r - 1] + count[r - 1];
      continue;  // a message that failed after others is retried first, and its error seen then
    }
    const int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return i;
    if (count[0] > 1) {  // refused as a segmented send: these go one by one, and without
      // checksum offload on the route (EIO) or GSO in the kernel, every later run too.
      if (e == EIO || e == ENOPROTOOPT || e == EOPNOTSUPP) gso = false;
      plainUntil = first[0] + count[0];
      continue;
    }
    errors++;  // this datagram cannot be sent (no route, too large, ...): drop it, as node:dgram reports and moves on
    (*failed)++;
    i = first[0] + 1;
  }
  return n;
}

uint32_t BatchSender::Queue(const Datagram* d, size_t n) {
  uint32_t dropped = 0;
  for (size_t j = 0; j < n; j++) {
    const size_t len = Length(d[j]);
    if (queuedBytes_ + len > kQueueBytes) {
      dropped++;
      continue;
    }
    Owned o;
    memcpy(&o.addr, d[j].addr, d[j].alen);
    o.alen = d[j].alen;
    o.bytes.resize(len);
    if (d[j].iov[0].iov_len) memcpy(o.bytes.data(), d[j].iov[0].iov_base, d[j].iov[0].iov_len);
    if (d[j].iov[1].iov_len) memcpy(o.bytes.data() + d[j].iov[0].iov_len, d[j].iov[1].iov_base, d[j].iov[1].iov_len);
    queuedBytes_ += len;
    queuedTotal++;
    queue_.push_back(std::move(o));
  }
  errors += dropped;
  return dropped;
}

void BatchSender::Drain() {
  while (!queue_.empty()) {
    const size_t n = queue_.size() < kMsgs ? queue_.size() : kMsgs;
    Datagram views[kMsgs];
    for (size_t j = 0; j < n; j++) {
      Owned& o = queue_[j];
      views[j] = {&o.addr, o.alen, {{o.bytes.data(), o.bytes.size()}, {nullptr, 0}}};
    }
    uint32_t failed = 0;
    const size_t done = Write(views, n, &failed);
    for (size_t j = 0; j < done; j++) {
      queuedBytes_ -= queue_.front().bytes.size();
      queue_.pop_front();
    }
    if (done < n) return;  // full again: wait for writable
  }
}

void BatchSender::Clear() {
  queue_.clear();
  queuedBytes_ = 0;
}

#endif  // __linux__

// The flow thread's loop (flow-io.h): per readiness event,
//   TAP: a plain frame an installed flow takes (unicast IPv4 to its peer, one datagram) is
//        sealed by that flow and sent to the peer's endpoint here; any other read is queued for
//        JS as tap.cc delivers it;
//   UDP: a datagram naming an installed flow's edge, from that edge's endpoint, is opened by
//        the flow: a Frame is written to the TAP here; a Plaintext is queued with its edge id; a
//        NotMine datagram is queued with its source; a Drop is counted in the flow's stats.
// A full queue drops and counts: the thread never blocks on JS.
#include "flow-io.h"

#ifdef __linux__
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>


namespace {

constexpr size_t kVnetHdr = 10;
constexpr size_t kReadBuf = kVnetHdr + 65535 + 18;
constexpr int kReadsPerWake = 64;
const uint8_t kZeroHdr[kVnetHdr] = {};

bool SameEndpoint(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    auto x = reinterpret_cast<const sockaddr_in*>(&a), y = reinterpret_cast<const sockaddr_in*>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  auto x = reinterpret_cast<const sockaddr_in6*>(&a), y = reinterpret_cast<const sockaddr_in6*>(&b);
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

// The source as udp.cc formats it: IPv4 (also ::ffff:a.b.c.d) as a.b.c.d.
std::string HostOf(const sockaddr_storage& ss, uint16_t* port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto a = reinterpret_cast<const sockaddr_in*>(&ss);
    *port = ntohs(a->sin_port);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
  } else {
    auto a = reinterpret_cast<const sockaddr_in6*>(&ss);
    *port = ntohs(a->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, buf, sizeof buf);
    else inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

uint32_t U32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

}  // namespace

double FlowMonoMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

FlowEntry* FlowIo::ByEdge(uint32_t id) {
  for (auto& e : flows) if (e.flow->localEdgeId() == id) return &e;
  return nullptr;
}

FlowEntry* FlowIo::ByPeer(uint32_t ip) {
  for (auto& e : flows) if (e.flow->peerIp() == ip) return &e;
  return nullptr;
}

void FlowIo::Enqueue(FlowQueueItem&& it) {
  if (!queue.Push(std::move(it))) { counters[kQueueDrops]++; return; }
  counters[kToJs]++;
  uv_async_send(lent_.wake);
}

void FlowIo::Run(const Lent& lent) {
  lent_ = lent;
  FlowAead aead;
  std::vector<uint8_t> buf(kReadBuf), out(kReadBuf + kFlowOverhead);
  struct pollfd fds[3] = {{lent_.tap, POLLIN, 0}, {lent_.udp, POLLIN, 0}, {lent_.stop, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[2].revents) return;
    if ((fds[0].revents | fds[1].revents) & POLLNVAL) return;  // an owner closed its fd under us
    if ((fds[0].revents & (POLLIN | POLLERR)) && !ReadTap(aead, buf, out)) fds[0].fd = -1;  // poll() skips it from now on
    if (fds[1].revents & (POLLIN | POLLERR)) ReadUdp(aead, buf);
  }
}

// False after a read error other than EAGAIN (the interface was deleted): it goes to JS as
// tap.cc reports it (the TapDevice closes), and the TAP is not polled again.
bool FlowIo::ReadTap(FlowAead& aead, std::vector<uint8_t>& buf, std::vector<uint8_t>& out) {
  for (int i = 0; i < kReadsPerWake; i++) {
    ssize_t r = read(lent_.tap, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      const int err = errno;
      FlowQueueItem it{FlowQueueItem::kTapError, 0, 0, std::string(), {}};
      it.text = err == EBADF || err == EBADFD ? "the interface was deleted" : strerror(err);
      Enqueue(std::move(it));
      return false;
    }
    if (r <= 0) return true;
    counters[kTapReads]++;
    const size_t h = lent_.vnet ? kVnetHdr : 0;
    // offload.ts isPlainVnet: no GSO and no checksum left to fill in.
    const bool plain = !lent_.vnet || (static_cast<size_t>(r) > h && (buf[0] & ~2u) == 0 && buf[1] == 0);
    bool sent = false;
    if (plain && static_cast<size_t>(r) >= h + 34) {
      const uint8_t* f = buf.data() + h;
      const size_t fl = static_cast<size_t>(r) - h;
      std::lock_guard<std::mutex> g(mu);
      FlowEntry* e = ByPeer(U32(f + 14 + 16));
      if (e != nullptr && e->flow->Takes(f, fl)) {
        const size_t n = e->flow->Seal(aead, f, fl, lent_.offset + FlowMonoMs(), out.data());
        if (n > 0) {
          sent = true;
          counters[kTapSealed]++;
          if (sendto(lent_.udp, out.data(), n, 0, reinterpret_cast<sockaddr*>(&e->addr), e->alen) != static_cast<ssize_t>(n)) counters[kSendErrors]++;
        }
      }
    }
    if (!sent) Enqueue({FlowQueueItem::kTapRead, 0, 0, std::string(), std::vector<uint8_t>(buf.data(), buf.data() + r)});
  }
  return true;
}

void FlowIo::ReadUdp(FlowAead& aead, std::vector<uint8_t>& buf) {
  for (int i = 0; i < kReadsPerWake; i++) {
    sockaddr_storage from;
    socklen_t flen = sizeof from;
    uint8_t* d = buf.data() + kVnetHdr;  // room for the TAP's header in front of a delivered frame
    ssize_t r = recvfrom(lent_.udp, d, buf.size() - kVnetHdr, 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return;
    counters[kUdpReads]++;
    const size_t len = static_cast<size_t>(r);
    FlowVerdict v = FlowVerdict::kNotMine;
    uint8_t* p = nullptr;
    size_t pl = 0;
    uint32_t edge = 0;
    if (len >= 10) {
      std::lock_guard<std::mutex> g(mu);
      edge = U32(d + 6);
      FlowEntry* e = ByEdge(edge);
      // udp.ts: a datagram for an edge counts only from that edge's endpoint.
      if (e != nullptr && SameEndpoint(from, e->addr)) v = e->flow->Open(aead, d, len, lent_.offset + FlowMonoMs(), &p, &pl);
    }
    if (v == FlowVerdict::kFrame) {
      struct iovec iov[2] = {{const_cast<uint8_t*>(kZeroHdr), kVnetHdr}, {p, pl}};
      const ssize_t want = static_cast<ssize_t>(pl + (lent_.vnet ? kVnetHdr : 0));
      if (writev(lent_.tap, lent_.vnet ? iov : iov + 1, lent_.vnet ? 2 : 1) == want) counters[kTapWrites]++;
      else counters[kTapWriteErrors]++;
    } else if (v == FlowVerdict::kPlaintext) {
      Enqueue({FlowQueueItem::kPlain, edge, 0, std::string(), std::vector<uint8_t>(p, p + pl)});
    } else if (v == FlowVerdict::kNotMine) {
      FlowQueueItem it{FlowQueueItem::kDatagram, 0, 0, std::string(), std::vector<uint8_t>(d, d + len)};
      it.text = HostOf(from, &it.port);
      Enqueue(std::move(it));
    }
  }
}

#endif

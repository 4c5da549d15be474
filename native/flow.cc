// See flow.h. Every check here mirrors one in the TypeScript path, named beside it.
#include "flow.h"

#include <cstring>
#include <initializer_list>

namespace {

uint32_t U32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
void Put32(uint8_t* p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

// vpn/frames.ts isIpv4Frame.
bool Ipv4Frame(const uint8_t* f, size_t len) {
  if (len < kFlowEth + 20 || f[12] != 0x08 || f[13] != 0x00) return false;
  const uint8_t vihl = f[kFlowEth];
  const size_t ihl = (vihl & 0x0f) * 4, total = (size_t(f[kFlowEth + 2]) << 8) | f[kFlowEth + 3];
  return (vihl >> 4) == 4 && ihl >= 20 && total >= ihl && kFlowEth + total <= len;
}

}  // namespace

int FlowReplay::Check(uint64_t n) const {
  if (top < 0 || n > static_cast<uint64_t>(top)) return 0;
  if (static_cast<uint64_t>(top) - n >= kFlowReplayWindow) return 2;
  const uint32_t i = n % kFlowReplayWindow;
  return (bits[i >> 5] & (1u << (i & 31))) ? 1 : 0;
}

void FlowReplay::Mark(uint64_t n) {
  if (top < 0 || n > static_cast<uint64_t>(top)) {
    if (top < 0 || n - static_cast<uint64_t>(top) >= kFlowReplayWindow) memset(bits, 0, sizeof bits);
    else for (uint64_t i = static_cast<uint64_t>(top) + 1; i < n; i++) bits[(i % kFlowReplayWindow) >> 5] &= ~(1u << (i % kFlowReplayWindow & 31));
    top = static_cast<int64_t>(n);
  }
  const uint32_t i = n % kFlowReplayWindow;
  bits[i >> 5] |= 1u << (i & 31);
}

Flow::Flow(const FlowSpec& s) : s_(s) {
  cur_.valid = true;
  cur_.epoch = s.recvEpoch;
  memcpy(cur_.key, s.recvKey, kFlowKeyLen);
  cur_.window = s.recvWindow;
  FlowWipe(s_.recvKey, kFlowKeyLen);
}

Flow::~Flow() {
  FlowWipe(s_.sendKey, kFlowKeyLen);
  for (FlowRecvEpoch* e : {&cur_, &prev_, &next_}) FlowWipe(e->key, kFlowKeyLen);
}

bool Flow::Takes(const uint8_t* f, size_t len) const {
  // ipop-node.ts fromTap: our source, unicast to the flow's peer (DHCP requests are broadcast).
  return len <= kFlowMaxFrame && Ipv4Frame(f, len) && U32(f + kFlowEth + 12) == s_.localIp && U32(f + kFlowEth + 16) == s_.peerIp;
}

bool Flow::NextCounter(double now, uint64_t* n) {
  // session.ts nextCounter: rekey after rekeyPackets packets or rekeyMs in an epoch.
  if (s_.sendCounter >= s_.rekeyPackets || now - s_.sendEpochStart >= s_.rekeyMs) {
    uint8_t k[kFlowKeyLen];
    if (!FlowNextEpochKey(s_.sendKey, k)) return false;
    memcpy(s_.sendKey, k, kFlowKeyLen);
    FlowWipe(k, kFlowKeyLen);
    s_.sendEpoch++;
    s_.sendCounter = 0;
    s_.sendEpochStart = now;
    st_.rekeys++;
  }
  *n = s_.sendCounter++;
  return true;
}

size_t Flow::SealTransport(FlowAead& aead, uint8_t type, const uint8_t* pt, size_t len, double now, uint8_t* out) {
  uint64_t n;
  if (!NextCounter(now, &n)) return 0;
  out[0] = type; out[1] = s_.sendEpoch;  // secure-wire.ts writeDataHeader
  Put32(out + 2, static_cast<uint32_t>(n >> 32));
  Put32(out + 6, static_cast<uint32_t>(n));
  if (!aead.Seal(s_.sendKey, n, out, kFlowDataHeader, pt, len, out + kFlowDataHeader)) return 0;
  return kFlowDataHeader + len + kFlowTagLen;
}

void Flow::Export(FlowExport* e) const {
  memcpy(e->sendKey, s_.sendKey, kFlowKeyLen);
  e->sendEpoch = s_.sendEpoch;
  e->sendCounter = s_.sendCounter;
  e->sendEpochStart = s_.sendEpochStart;
  e->cur = cur_;
  e->prev = prev_;
}

size_t Flow::Seal(FlowAead& aead, const uint8_t* frame, size_t len, double now, uint8_t* out) {
  if (len > kFlowMaxFrame) return 0;
  uint64_t n;
  if (!NextCounter(now, &n)) return 0;
  uint8_t* u = out;
  u[0] = 1; u[1] = 0;  // udp.ts: version, T_DATA
  Put32(u + 2, s_.localEdgeId);
  Put32(u + 6, s_.remoteEdgeId);
  uint8_t* d = u + kFlowUdpHeader;  // secure-wire.ts writeDataHeader
  d[0] = 0x10; d[1] = s_.sendEpoch;
  Put32(d + 2, static_cast<uint32_t>(n >> 32));
  Put32(d + 6, static_cast<uint32_t>(n));
  uint8_t* a = d + kFlowDataHeader;  // ah-wire.ts writeAhHeader, as Router.sendLent fills it
  a[0] = 0x02; a[1] = 1; a[2] = 5; a[3] = 0; a[4] = 0; a[5] = 1; a[6] = s_.ttl >> 8; a[7] = s_.ttl & 0xff;
  memcpy(a + 8, s_.self, 20);
  memcpy(a + 28, s_.peer, 20);
  a[48] = 2;  // Payload.Ip
  if (a + kFlowAhHeader != frame) memmove(a + kFlowAhHeader, frame, len);
  if (!aead.Seal(s_.sendKey, n, d, kFlowDataHeader, a, kFlowAhHeader + len, a)) return 0;
  st_.sealed++;
  st_.sealedBytes += len;
  return kFlowOverhead + len;
}

FlowRecvEpoch* Flow::EpochFor(uint8_t e) {
  if (e == cur_.epoch) return &cur_;
  if (e == static_cast<uint8_t>(cur_.epoch + 1)) {
    if (!next_.valid) {
      if (!FlowNextEpochKey(cur_.key, next_.key)) return nullptr;
      next_.valid = true;
      next_.epoch = e;
      next_.window = FlowReplay();
    }
    return &next_;
  }
  if (prev_.valid && e == prev_.epoch) return &prev_;
  return nullptr;
}

FlowVerdict Flow::OpenTransport(FlowAead& aead, uint8_t* d, size_t dl, double now, uint8_t** pt, size_t* ptLen) {
  // secure-wire.ts decodeDataHeader.
  if (dl < kFlowDataHeader + kFlowTagLen || (d[0] != 0x10 && d[0] != 0x11) || U32(d + 2) >= 0x200000) { st_.malformed++; return FlowVerdict::kDrop; }
  const uint64_t n = (uint64_t(U32(d + 2)) << 32) | U32(d + 6);
  if (prev_.valid && now >= prev_.expiresAt) { FlowWipe(prev_.key, kFlowKeyLen); prev_.valid = false; }
  FlowRecvEpoch* ep = EpochFor(d[1]);
  if (ep == nullptr) { st_.badEpoch++; return FlowVerdict::kDrop; }
  const int seen = ep->window.Check(n);
  if (seen != 0) { (seen == 1 ? st_.replays : st_.tooOld)++; return FlowVerdict::kDrop; }
  uint8_t* p = d + kFlowDataHeader;
  const size_t pl = dl - kFlowDataHeader - kFlowTagLen;
  if (!aead.Open(ep->key, n, d, kFlowDataHeader, p, dl - kFlowDataHeader, p)) { st_.decryptFailures++; return FlowVerdict::kDrop; }
  ep->window.Mark(n);
  if (ep == &next_) {  // the peer has moved on: current becomes previous, for stragglers
    FlowWipe(prev_.key, kFlowKeyLen);
    prev_ = cur_;
    prev_.expiresAt = now + s_.graceMs;
    cur_ = next_;
    next_ = FlowRecvEpoch();
  }
  st_.opened++;
  if (d[0] == 0x11) { st_.confirms++; return FlowVerdict::kDrop; }  // secure-edge.ts: only DATA is delivered
  *pt = p;
  *ptLen = pl;
  return FlowVerdict::kPlaintext;
}

FlowVerdict Flow::Open(FlowAead& aead, uint8_t* u, size_t len, double now, uint8_t** frame, size_t* frameLen) {
  // udp.ts demultiplexing: a data datagram naming this edge. Anything else is TypeScript's.
  if (len < kFlowUdpHeader + 1 || u[0] != 1 || u[1] != 0 || U32(u + 6) != s_.localEdgeId || (u[kFlowUdpHeader] != 0x10 && u[kFlowUdpHeader] != 0x11)) return FlowVerdict::kNotMine;
  uint8_t* p = nullptr;
  size_t pl = 0;
  if (OpenTransport(aead, u + kFlowUdpHeader, len - kFlowUdpHeader, now, &p, &pl) != FlowVerdict::kPlaintext) return FlowVerdict::kDrop;
  *frame = p;
  *frameLen = pl;
  // Router.receive, FramePath.register (only over the connection to its source) and
  // ipop-node.ts fromOverlay/deliver (the source IP is the peer's, unicast to us). Anything
  // else authenticated (overlay messages, offloaded frames, other addresses) is TypeScript's.
  const uint8_t* f = p + kFlowAhHeader;
  const size_t fl = pl >= kFlowAhHeader ? pl - kFlowAhHeader : 0;
  const bool mine = pl >= kFlowAhHeader && p[0] == 0x02 && p[1] == 1 && p[2] == 5 && p[3] == 0 && p[48] == 2 &&
                    memcmp(p + 8, s_.peer, 20) == 0 && memcmp(p + 28, s_.self, 20) == 0 &&
                    Ipv4Frame(f, fl) && U32(f + kFlowEth + 12) == s_.peerIp && U32(f + kFlowEth + 16) == s_.localIp;
  if (!mine) { st_.plaintexts++; return FlowVerdict::kPlaintext; }
  uint8_t* w = p + kFlowAhHeader;
  memcpy(w, s_.tapMac, 6);
  memcpy(w + 6, s_.gatewayMac, 6);
  *frame = w;
  *frameLen = fl;
  st_.frames++;
  st_.frameBytes += fl;
  return FlowVerdict::kFrame;
}

// One established VPN flow for the native fast path: a peer reached over a direct UDP edge
// with an established secure session (src/edge/session.ts), in router mode. It builds and
// takes apart exactly the bytes the TypeScript path puts on the wire for a frame that fits
// one datagram:
//   UDP header (10: version 1, type 0 data, sender edge id, receiver edge id; transport/udp.ts)
//   DATA header (10: 0x10, epoch, counter u64; edge/secure-wire.ts), the AD of the seal
//   sealed: AH header (49: 0x02, 1, mode 5 exact, flags 0, hops 1, ttl, src, dst, ptype 2 Ip;
//           routing/ah-wire.ts) + the Ethernet frame, then the 16-byte tag.
// The flow owns the session's transport state while installed: send key, epoch and counter
// (rekeying as Session.nextCounter does) and the receive epochs with their replay windows
// (Session.openPacket). Times are milliseconds on the caller's clock. An authenticated CONFIRM
// (type 0x11: a retransmitted handshake confirmation) is counted and dropped, as TypeScript does.
#pragma once
#include <cstddef>
#include <cstdint>

#include "flow-crypto.h"

constexpr size_t kFlowUdpHeader = 10, kFlowDataHeader = 10, kFlowAhHeader = 49, kFlowEth = 14;
constexpr size_t kFlowOverhead = kFlowUdpHeader + kFlowDataHeader + kFlowAhHeader + kFlowTagLen;
constexpr size_t kFlowMaxDatagram = 1500 - 48;  // transport/udp-fragments.ts MAX_DATAGRAM
constexpr size_t kFlowMaxFrame = kFlowMaxDatagram - kFlowOverhead;
constexpr uint32_t kFlowReplayWindow = 2048;    // session.ts REPLAY_WINDOW

struct FlowReplay {
  int64_t top = -1;
  uint32_t bits[kFlowReplayWindow / 32] = {};
  int Check(uint64_t n) const;  // 0 ok, 1 replay, 2 too old
  void Mark(uint64_t n);
};

struct FlowRecvEpoch {
  bool valid = false;
  uint8_t epoch = 0;
  uint8_t key[kFlowKeyLen] = {};
  FlowReplay window;
  double expiresAt = 0;  // the previous epoch only
};

// What TypeScript hands over when it installs a flow (see flow-napi.cc for the JS shape).
struct FlowSpec {
  uint32_t localEdgeId = 0, remoteEdgeId = 0;
  uint8_t sendKey[kFlowKeyLen] = {}, recvKey[kFlowKeyLen] = {};
  uint8_t sendEpoch = 0, recvEpoch = 0;
  uint64_t sendCounter = 0;
  double sendEpochStart = 0;
  FlowReplay recvWindow;
  uint64_t rekeyPackets = 1u << 20;
  double rekeyMs = 120000, graceMs = 10000;
  uint8_t self[20] = {}, peer[20] = {};
  uint16_t ttl = 8;
  uint32_t localIp = 0, peerIp = 0;  // host order
  uint8_t tapMac[6] = {}, gatewayMac[6] = {};
};

// Why a datagram did not become a frame for the TAP.
enum class FlowVerdict {
  kFrame,      // authenticated VPN frame for us, MACs rewritten: write it to the TAP
  kPlaintext,  // authenticated, but not a frame the flow delivers: TypeScript takes the plaintext
  kNotMine,    // not a DATA packet of this flow's edge: TypeScript takes the datagram unchanged
  kDrop,       // refused (counted in FlowStats), as Session.open would
};

struct FlowStats {
  uint64_t sealed = 0, opened = 0, frames = 0, plaintexts = 0;
  uint64_t decryptFailures = 0, replays = 0, tooOld = 0, badEpoch = 0, malformed = 0, rekeys = 0;
  uint64_t confirms = 0;  // authenticated CONFIRM packets: nothing to deliver (secure-edge.ts receiveTransport)
  uint64_t frameBytes = 0, sealedBytes = 0;  // Ethernet bytes delivered (kFrame) and sealed (Seal)
};

// The transport state a removed flow hands back to its Session (Session.restoreTransportState):
// the send side and the current and previous receive epochs (a derived next one is re-derived).
struct FlowExport {
  uint8_t sendKey[kFlowKeyLen] = {};
  uint8_t sendEpoch = 0;
  uint64_t sendCounter = 0;
  double sendEpochStart = 0;
  FlowRecvEpoch cur, prev;
};

class Flow {
 public:
  explicit Flow(const FlowSpec& s);
  ~Flow();
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;

  // The receiver's edge id (the key TypeScript's UDP listener demultiplexes on).
  uint32_t localEdgeId() const { return s_.localEdgeId; }
  uint32_t peerIp() const { return s_.peerIp; }
  void setRemoteEdgeId(uint32_t id) { s_.remoteEdgeId = id; }

  // True for a frame this flow sends: IPv4 unicast from our address to the peer's, fitting one datagram.
  bool Takes(const uint8_t* frame, size_t len) const;
  // Builds the datagram for frame (len <= kFlowMaxFrame) into out (len + kFlowOverhead bytes); returns its length, 0 on failure.
  size_t Seal(FlowAead& aead, const uint8_t* frame, size_t len, double now, uint8_t* out);
  // Takes a received datagram apart. kFrame: *frame/*frameLen is the Ethernet frame (inside d,
  // opened in place). kPlaintext: *frame/*frameLen is the plaintext (the secure edge's payload).
  FlowVerdict Open(FlowAead& aead, uint8_t* d, size_t len, double now, uint8_t** frame, size_t* frameLen);

  // A secure-edge transport packet (DATA header, then plaintext sealed, then the tag) of any type
  // (0x10 DATA, 0x11 CONFIRM) into out (len + kFlowDataHeader + kFlowTagLen bytes), on the
  // flow's counter: what Session.seal builds. Returns its length, 0 on failure.
  size_t SealTransport(FlowAead& aead, uint8_t type, const uint8_t* pt, size_t len, double now, uint8_t* out);
  void Export(FlowExport* e) const;
  // A secure-edge transport packet d (DATA header first, dl bytes) that reached TypeScript
  // another way (reassembled from fragments): kPlaintext with *pt inside d (opened in place),
  // or kDrop (counted; an authenticated CONFIRM too).
  FlowVerdict OpenTransport(FlowAead& aead, uint8_t* d, size_t dl, double now, uint8_t** pt, size_t* ptLen);

  const FlowStats& stats() const { return st_; }
  uint8_t sendEpoch() const { return s_.sendEpoch; }
  uint64_t sendCounter() const { return s_.sendCounter; }

 private:
  FlowRecvEpoch* EpochFor(uint8_t e);
  bool NextCounter(double now, uint64_t* n);  // after a rekey if one is due (session.ts nextCounter)
  FlowSpec s_;
  FlowRecvEpoch cur_, prev_, next_;
  FlowStats st_;
};

// The flow table's JS face (for TypeScript and the tests): FlowTable.install(spec) hands a
// flow's session state to native code, seal/open run one datagram through it on the calling
// thread. The mutex is the one a fast-path thread will take: a flow's counters and replay
// windows are only ever touched under it.
//
//   spec: { localEdgeId, remoteEdgeId (u32), sendKey, recvKey (32 bytes), sendEpoch, recvEpoch
//           (u8), sendCounter, sendEpochStart, rekeyPackets, rekeyMs, graceMs (numbers), self,
//           peer (20-byte addresses), ttl (u16), localIp, peerIp (u32), tapMac, gatewayMac (6),
//           recvWindow?: { top, bits: Uint32Array(64) } (Session.transportState) }
//   seal(peerIp, frame, now) → the datagram (a new Buffer), or null when no flow takes the frame
//   open(datagram, now) → [verdict, bytes?]: 0 frame (the Ethernet frame for the TAP), 1
//           plaintext (for the secure edge), 2 not mine, 3 dropped; the datagram is opened in
//           place, so a caller that keeps it passes a copy
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flow.h"
#include "flow-napi.h"

namespace {

bool Bytes(Napi::Object o, const char* k, uint8_t* out, size_t n, std::string* err) {
  Napi::Value v = o.Get(k);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().ByteLength() != n) { *err = std::string(k) + ": expected " + std::to_string(n) + " bytes"; return false; }
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  memcpy(out, static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset(), n);
  return true;
}
bool Num(Napi::Object o, const char* k, double lo, double hi, double* out, std::string* err) {
  Napi::Value v = o.Get(k);
  if (!v.IsNumber() || !(v.As<Napi::Number>().DoubleValue() >= lo && v.As<Napi::Number>().DoubleValue() <= hi)) { *err = std::string(k) + ": expected a number in range"; return false; }
  *out = v.As<Napi::Number>().DoubleValue();
  return true;
}

}  // namespace

bool ParseFlowSpec(Napi::Object o, FlowSpec* s, std::string* err) {
  double le, re, se, rce, sc, ses, rp, ttl, lip, pip;
  bool ok = Num(o, "localEdgeId", 1, 4294967295.0, &le, err) && Num(o, "remoteEdgeId", 0, 4294967295.0, &re, err) &&
            Bytes(o, "sendKey", s->sendKey, kFlowKeyLen, err) && Bytes(o, "recvKey", s->recvKey, kFlowKeyLen, err) &&
            Num(o, "sendEpoch", 0, 255, &se, err) && Num(o, "recvEpoch", 0, 255, &rce, err) && Num(o, "sendCounter", 0, 9007199254740991.0, &sc, err) &&
            Num(o, "sendEpochStart", -1e300, 1e300, &ses, err) && Num(o, "rekeyPackets", 1, 281474976710656.0, &rp, err) &&
            Num(o, "rekeyMs", 1e-9, 1e300, &s->rekeyMs, err) && Num(o, "graceMs", 0, 1e300, &s->graceMs, err) &&
            Bytes(o, "self", s->self, 20, err) && Bytes(o, "peer", s->peer, 20, err) && Num(o, "ttl", 0, 65535, &ttl, err) &&
            Num(o, "localIp", 0, 4294967295.0, &lip, err) && Num(o, "peerIp", 0, 4294967295.0, &pip, err) &&
            Bytes(o, "tapMac", s->tapMac, 6, err) && Bytes(o, "gatewayMac", s->gatewayMac, 6, err);
  if (!ok) return false;
  Napi::Value w = o.Get("recvWindow");
  if (!w.IsUndefined()) {
    double top;
    Napi::Value bits = w.IsObject() ? w.As<Napi::Object>().Get("bits") : Napi::Value();
    if (!w.IsObject() || !Num(w.As<Napi::Object>(), "top", -1, 9007199254740991.0, &top, err) || !bits.IsTypedArray() ||
        bits.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array || bits.As<Napi::TypedArray>().ElementLength() != kFlowReplayWindow / 32) {
      if (err->empty()) *err = "recvWindow: expected { top, bits: Uint32Array(" + std::to_string(kFlowReplayWindow / 32) + ") }";
      return false;
    }
    Napi::TypedArray t = bits.As<Napi::TypedArray>();
    s->recvWindow.top = static_cast<int64_t>(top);
    memcpy(s->recvWindow.bits, static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset(), sizeof s->recvWindow.bits);
  }
  s->localEdgeId = static_cast<uint32_t>(le); s->remoteEdgeId = static_cast<uint32_t>(re);
  s->sendEpoch = static_cast<uint8_t>(se); s->recvEpoch = static_cast<uint8_t>(rce);
  s->sendCounter = static_cast<uint64_t>(sc); s->sendEpochStart = ses; s->rekeyPackets = static_cast<uint64_t>(rp);
  s->ttl = static_cast<uint16_t>(ttl); s->localIp = static_cast<uint32_t>(lip); s->peerIp = static_cast<uint32_t>(pip);
  return true;
}

namespace {

class FlowTable : public Napi::ObjectWrap<FlowTable> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FlowTable", {
      InstanceMethod("install", &FlowTable::Install),
      InstanceMethod("remove", &FlowTable::Remove),
      InstanceMethod("seal", &FlowTable::Seal),
      InstanceMethod("open", &FlowTable::Open),
      InstanceMethod("stats", &FlowTable::Stats),
    });
  }

  explicit FlowTable(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FlowTable>(info) {}

 private:
  Napi::Value Install(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) { Napi::TypeError::New(env, "install(spec): spec must be an object").ThrowAsJavaScriptException(); return env.Undefined(); }
    Napi::Object o = info[0].As<Napi::Object>();
    FlowSpec s;
    std::string err;
    if (!ParseFlowSpec(o, &s, &err)) { Napi::TypeError::New(env, "install(spec): " + err).ThrowAsJavaScriptException(); return env.Undefined(); }
    std::lock_guard<std::mutex> g(mu_);
    flows_.erase(std::remove_if(flows_.begin(), flows_.end(), [&s](const std::unique_ptr<Flow>& f) {
      return f->localEdgeId() == s.localEdgeId || f->peerIp() == s.peerIp;
    }), flows_.end());
    flows_.push_back(std::make_unique<Flow>(s));
    FlowWipe(s.sendKey, kFlowKeyLen);
    FlowWipe(s.recvKey, kFlowKeyLen);
    return env.Undefined();
  }

  Flow* ByEdge(uint32_t id) { for (auto& f : flows_) if (f->localEdgeId() == id) return f.get(); return nullptr; }
  Flow* ByPeer(uint32_t ip) { for (auto& f : flows_) if (f->peerIp() == ip) return f.get(); return nullptr; }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    const uint32_t id = info[0].ToNumber().Uint32Value();
    std::lock_guard<std::mutex> g(mu_);
    const size_t n = flows_.size();
    flows_.erase(std::remove_if(flows_.begin(), flows_.end(), [id](const std::unique_ptr<Flow>& f) { return f->localEdgeId() == id; }), flows_.end());
    return Napi::Boolean::New(info.Env(), flows_.size() != n);
  }

  Napi::Value Seal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[1].IsTypedArray() || !info[2].IsNumber()) { Napi::TypeError::New(env, "seal(peerIp, frame, now)").ThrowAsJavaScriptException(); return env.Undefined(); }
    Napi::TypedArray t = info[1].As<Napi::TypedArray>();
    const uint8_t* frame = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    const size_t len = t.ByteLength();
    std::lock_guard<std::mutex> g(mu_);
    Flow* f = ByPeer(info[0].ToNumber().Uint32Value());
    if (f == nullptr || !f->Takes(frame, len)) return env.Null();
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, len + kFlowOverhead);
    const size_t n = f->Seal(aead_, frame, len, info[2].As<Napi::Number>().DoubleValue(), out.Data());
    if (n == 0) return env.Null();
    return out;
  }

  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || !info[1].IsNumber()) { Napi::TypeError::New(env, "open(datagram, now)").ThrowAsJavaScriptException(); return env.Undefined(); }
    Napi::TypedArray t = info[0].As<Napi::TypedArray>();
    uint8_t* d = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    const size_t len = t.ByteLength();
    Napi::Array r = Napi::Array::New(env);
    std::lock_guard<std::mutex> g(mu_);
    Flow* f = len >= kFlowUdpHeader ? ByEdge((uint32_t(d[6]) << 24) | (uint32_t(d[7]) << 16) | (uint32_t(d[8]) << 8) | d[9]) : nullptr;
    uint8_t* p = nullptr;
    size_t pl = 0;
    const FlowVerdict v = f == nullptr ? FlowVerdict::kNotMine : f->Open(aead_, d, len, info[1].As<Napi::Number>().DoubleValue(), &p, &pl);
    r.Set(0u, Napi::Number::New(env, static_cast<int>(v)));
    if (v == FlowVerdict::kFrame || v == FlowVerdict::kPlaintext) r.Set(1u, Napi::Buffer<uint8_t>::Copy(env, p, pl));
    return r;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::lock_guard<std::mutex> g(mu_);
    Flow* f = ByEdge(info[0].ToNumber().Uint32Value());
    if (f == nullptr) return env.Undefined();
    const FlowStats& s = f->stats();
    Napi::Object o = Napi::Object::New(env);
    const std::pair<const char*, uint64_t> kv[] = {
        {"sealed", s.sealed}, {"opened", s.opened}, {"frames", s.frames}, {"plaintexts", s.plaintexts}, {"decryptFailures", s.decryptFailures},
        {"replays", s.replays}, {"tooOld", s.tooOld}, {"badEpoch", s.badEpoch}, {"malformed", s.malformed}, {"rekeys", s.rekeys},
        {"sendEpoch", f->sendEpoch()}, {"sendCounter", f->sendCounter()}};
    for (const auto& [k, v] : kv) o.Set(k, static_cast<double>(v));
    return o;
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Flow>> flows_;
  FlowAead aead_;
};

}  // namespace

Napi::Object InitFlows(Napi::Env env, Napi::Object exports) {
  exports.Set("FlowTable", FlowTable::Define(env));
  return exports;
}

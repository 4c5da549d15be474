// Minimal Linux TAP device for the VPN. Configuration goes through ioctls; frames are
// read on the node event loop (uv_poll, no threads) and handed to JS in batches: one
// callback per readiness event, with all frames copied into a single Buffer plus a
// Uint32Array of their lengths. start(cb, head, tail) leaves head bytes before and tail bytes
// after each frame in that Buffer, so the VPN can write its headers and tag in place. Writes never block and never throw on a transient error:
// a frame the kernel refuses is dropped and counted.
//
// With offload on, the device is opened with IFF_VNET_HDR and accepts TCP segmentation and
// checksum offload: the kernel then hands over TCP "super-packets" of up to 64 KB, each
// after a 10-byte virtio_net_hdr, so the VPN seals and routes one message where it would
// otherwise handle ~45 frames. Plain frames are written with a zero header in front.
#include <napi.h>
#include <uv.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "floor.h"
#include "if-config.h"
#include "flow-napi.h"
#include "flow-thread.h"
#include "links.h"
#include "udp.h"

namespace {

constexpr int kBatch = 64;                 // frames per JS callback, to stay fair to other I/O
constexpr size_t kVnetHdr = 10;            // struct virtio_net_hdr
constexpr size_t kMaxFrame = kVnetHdr + 65535 + 18;  // header + largest packet + Ethernet/VLAN header
constexpr size_t kArena = 1024 * 1024;     // a full batch of 1500-MTU frames, or 15 super-packets
constexpr uint32_t kMaxRoom = 256;         // headroom or tailroom per frame that start() accepts
const uint8_t kZeroHdr[kVnetHdr] = {};

class Tap : public Napi::ObjectWrap<Tap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Tap", {
      InstanceMethod("name", &Tap::Name),
      InstanceMethod("mac", &Tap::Mac),
      InstanceMethod("setMtu", &Tap::SetMtu),
      InstanceMethod("setIPv4", &Tap::SetIPv4),
      InstanceMethod("setIPv6", &Tap::SetIPv6),
      InstanceMethod("up", &Tap::Up),
      InstanceMethod("start", &Tap::Start),
      InstanceMethod("lend", &Tap::Lend),
      InstanceMethod("write", &Tap::Write),
      InstanceMethod("writeBatch", &Tap::WriteBatch),
      InstanceMethod("stats", &Tap::Stats),
      InstanceMethod("offload", &Tap::Offload),
      InstanceMethod("close", &Tap::Close),
    });
  }

  explicit Tap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tap>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString() || (info.Length() > 1 && !info[1].IsBoolean())) {
      Napi::TypeError::New(env, "Tap(name, offload): name must be a string, offload a boolean").ThrowAsJavaScriptException();
      return;
    }
    const bool offload = info.Length() > 1 && info[1].As<Napi::Boolean>().Value();
    std::string want = info[0].As<Napi::String>();
    if (want.empty() || want.size() >= IFNAMSIZ || want.find_first_of("/: \t\n") != std::string::npos) {
      Throw("invalid interface name '" + want + "' (1-15 characters, no '/', ':' or spaces)");
      return;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == ENOENT || e == ENODEV || e == ENXIO) Throw("/dev/net/tun is missing: load the tun module (modprobe tun)");
      else if (e == EACCES || e == EPERM) Throw("cannot open /dev/net/tun: permission denied (run as root or with CAP_NET_ADMIN)");
      else Throw("cannot open /dev/net/tun: " + IfReason(e));
      return;
    }
    struct ifreq ifr = {};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);  // not persistent: the device goes with the fd
    memcpy(ifr.ifr_name, want.data(), want.size());
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int e = errno;
      close(fd);
      Throw("TUNSETIFF " + want + ": " + IfReason(e) + (e == EINVAL ? " (is the name taken by a non-TAP interface?)" : ""));
      return;
    }
    if (offload) {
      // 10 is the kernel's default header size anyway. Should the offload request be refused,
      // the kernel hands over plain frames (with a zero header) and still takes super-packets
      // written to it, so neither failure is fatal.
      int size = kVnetHdr;
      unsigned long features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
      (void)ioctl(fd, TUNSETVNETHDRSZ, &size);
      (void)ioctl(fd, TUNSETOFFLOAD, features);
    }
    vnet_ = offload;
    fd_ = fd;
    name_.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
    napi_add_env_cleanup_hook(env_, &Tap::OnEnvExit, this);
  }

  ~Tap() override { Shutdown(); }

 private:
  void Throw(const std::string& msg) { Napi::Error::New(env_, msg).ThrowAsJavaScriptException(); }

  bool Open() {
    if (fd_ >= 0) return true;
    Throw("tap device is closed");
    return false;
  }

  Napi::Value Name(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
  Napi::Value Offload(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), vnet_); }

  // Throws the message of a failed interface call (if-config.cc); true when there was none.
  bool Check(const std::string& err) {
    if (err.empty()) return true;
    Throw(err);
    return false;
  }

  Napi::Value Mac(const Napi::CallbackInfo& info) {
    uint8_t mac[6];
    if (!Open() || !Check(IfMac(name_, mac))) return info.Env().Undefined();
    return Napi::Buffer<uint8_t>::Copy(info.Env(), mac, 6);
  }

  Napi::Value SetMtu(const Napi::CallbackInfo& info) {
    if (!info[0].IsNumber()) {
      Napi::TypeError::New(info.Env(), "setMtu(mtu): mtu must be a number").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    if (Open()) Check(IfSetMtu(name_, info[0].As<Napi::Number>().Int32Value()));
    return info.Env().Undefined();
  }

  // setIPv4(address, prefixLength) and setIPv6(address, prefixLength).
  Napi::Value SetAddress(const Napi::CallbackInfo& info, int family) {
    const bool v4 = family == AF_INET;
    if (!info[0].IsString() || !info[1].IsNumber()) {
      Napi::TypeError::New(info.Env(), std::string(v4 ? "setIPv4" : "setIPv6") + "(address, prefixLength): bad arguments").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    const std::string text = info[0].As<Napi::String>().Utf8Value();
    const int prefix = info[1].As<Napi::Number>().Int32Value();
    if (Check(IfCheckAddress(family, text, prefix)) && Open()) Check(v4 ? IfSetIPv4(name_, text, prefix) : IfSetIPv6(name_, text, prefix));
    return info.Env().Undefined();
  }
  Napi::Value SetIPv4(const Napi::CallbackInfo& info) { return SetAddress(info, AF_INET); }
  Napi::Value SetIPv6(const Napi::CallbackInfo& info) { return SetAddress(info, AF_INET6); }

  Napi::Value Up(const Napi::CallbackInfo& info) {
    if (Open()) Check(IfUp(name_));
    return info.Env().Undefined();
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) {
      Napi::TypeError::New(env, "start(callback): callback must be a function").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    // Optional room around each frame in the delivered Buffer (for headers and a tag written in place).
    uint32_t head = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
    uint32_t tail = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
    if (head > kMaxRoom || tail > kMaxRoom) {
      Napi::RangeError::New(env, "start(callback, head, tail): room must be at most 256 bytes").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!Open()) return env.Undefined();
    if (poll_ != nullptr) {
      Throw("tap device " + name_ + " is already started");
      return env.Undefined();
    }
    if (arena_ == nullptr) arena_ = static_cast<uint8_t*>(malloc(kArena));
    uv_loop_t* loop = nullptr;
    if (arena_ == nullptr || napi_get_uv_event_loop(env, &loop) != napi_ok) {
      Throw("tap device " + name_ + ": cannot start reading");
      return env.Undefined();
    }
    poll_ = new uv_poll_t;
    poll_->data = this;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc == 0) rc = uv_poll_start(poll_, UV_READABLE, &Tap::OnPoll);
    if (rc != 0) {
      StopPoll();
      Throw("tap device " + name_ + ": uv_poll: " + uv_strerror(rc));
      return env.Undefined();
    }
    head_ = head;
    tail_ = tail;
    onRead_ = Napi::Persistent(info[0].As<Napi::Function>());
    if (!async_) async_ = std::make_unique<Napi::AsyncContext>(env, "TapDevice");
    if (!referenced_) Ref();  // an active poll must keep the JS object (and so this) alive
    referenced_ = true;
    return env.Undefined();
  }

  // lend() → the fd, for a thread that becomes its only reader (flow-thread.cc): reading here
  // stops for good; writes and close() stay here (close only after the thread stopped).
  Napi::Value Lend(const Napi::CallbackInfo& info) {
    StopPoll();
    return Napi::Number::New(info.Env(), fd_);
  }

  static void OnPoll(uv_poll_t* handle, int status, int) { static_cast<Tap*>(handle->data)->ReadBatch(status); }

  void ReadBatch(int status) {
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    uint32_t lens[kBatch];
    int n = 0, err = 0;
    size_t off = 0, bytes = 0;
    if (status < 0) err = -status;  // uv reports negated errno on Linux
    while (err == 0 && n < kBatch && kArena - off >= head_ + kMaxFrame + tail_) {
      ssize_t r = read(fd_, arena_ + off + head_, kMaxFrame);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      if (r <= 0) break;
      lens[n++] = static_cast<uint32_t>(r);
      off += head_ + static_cast<size_t>(r) + tail_;
      bytes += static_cast<size_t>(r);
    }
    if (n > 0) {
      stats_[0] += n;
      stats_[2] += static_cast<double>(bytes);
      Napi::Uint32Array lengths = Napi::Uint32Array::New(env, n);
      memcpy(lengths.Data(), lens, n * sizeof(uint32_t));
      Deliver({env.Null(), Napi::Buffer<uint8_t>::Copy(env, arena_, off), lengths});
    }
    if (err != 0 && poll_ != nullptr) {  // the callback may have closed us already
      Napi::Function cb = onRead_.Value();
      bool gone = err == EBADF || err == EBADFD;  // what tun reports once the interface is deleted
      Napi::Error e = Napi::Error::New(env, "read " + name_ + ": " + (gone ? "the interface was deleted" : IfReason(err)));
      StopPoll();
      Deliver({e.Value()}, cb);
    }
  }

  void Deliver(std::initializer_list<napi_value> args, Napi::Function cb = Napi::Function()) {
    Napi::Env env(env_);
    if (cb.IsEmpty()) {
      if (onRead_.IsEmpty()) return;
      cb = onRead_.Value();
    }
    cb.MakeCallback(Value(), args, *async_);  // napi_make_callback needs an object receiver
    // Nothing above us on the stack would see a throw from the callback: make it uncaught.
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    if (!info[0].IsTypedArray()) {
      Napi::TypeError::New(info.Env(), "write(frame): frame must be a Uint8Array").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    return Napi::Boolean::New(info.Env(), WriteOne(info[0].As<Napi::TypedArray>(), false));
  }

  // writeBatch(frames, withHeader): withHeader says the frames start with a virtio_net_hdr.
  Napi::Value WriteBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) {
      Napi::TypeError::New(env, "writeBatch(frames): frames must be an array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const bool withHeader = info.Length() > 1 && info[1].ToBoolean().Value();
    if (withHeader && !vnet_) {
      Throw("tap device " + name_ + " was opened without offload: frames cannot carry a virtio header");
      return env.Undefined();
    }
    Napi::Array frames = info[0].As<Napi::Array>();
    uint32_t ok = 0, count = frames.Length();
    for (uint32_t i = 0; i < count; i++) {
      Napi::Value f = frames.Get(i);
      if (!f.IsTypedArray()) {
        Napi::TypeError::New(env, "writeBatch(frames): frames[" + std::to_string(i) + "] is not a Uint8Array")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      if (WriteOne(f.As<Napi::TypedArray>(), withHeader)) ok++;
    }
    return Napi::Number::New(env, ok);
  }

  bool WriteOne(Napi::TypedArray frame, bool withHeader) {
    void* data = nullptr;
    napi_get_typedarray_info(env_, frame, nullptr, nullptr, &data, nullptr, nullptr);  // data is offset already
    size_t len = frame.ByteLength();
    struct iovec iov[2] = {{const_cast<uint8_t*>(kZeroHdr), kVnetHdr}, {data, len}};
    const bool prefix = vnet_ && !withHeader;
    ssize_t want = static_cast<ssize_t>(len + (prefix ? kVnetHdr : 0));
    if (fd_ >= 0 && writev(fd_, prefix ? iov : iov + 1, prefix ? 2 : 1) == want) {
      stats_[1] += 1;
      stats_[3] += static_cast<double>(len);
      return true;
    }
    stats_[4] += 1;  // EAGAIN, a malformed frame or a closed device: drop, as a NIC would
    return false;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    const char* keys[] = {"framesIn", "framesOut", "bytesIn", "bytesOut", "writeDrops"};
    for (int i = 0; i < 5; i++) o.Set(keys[i], stats_[i]);
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    onRead_.Reset();  // breaks the cycle callback -> device, so both can be collected
    if (referenced_) Unref();
    referenced_ = false;
    return info.Env().Undefined();
  }

  void StopPoll() {
    if (poll_ == nullptr) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  // Native half of close(): safe from the finalizer and the env cleanup hook.
  void Shutdown() {
    StopPoll();  // before close(fd), so epoll forgets the fd first
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
      napi_remove_env_cleanup_hook(env_, &Tap::OnEnvExit, this);
    }
    free(arena_);
    arena_ = nullptr;
  }

  static void OnEnvExit(void* self) { static_cast<Tap*>(self)->Shutdown(); }

  napi_env env_;
  int fd_ = -1;
  uint32_t head_ = 0, tail_ = 0;  // room around each frame in a delivered batch (start's arguments)
  bool vnet_ = false;
  std::string name_;
  uv_poll_t* poll_ = nullptr;
  bool referenced_ = false;
  uint8_t* arena_ = nullptr;
  Napi::FunctionReference onRead_;
  std::unique_ptr<Napi::AsyncContext> async_;
  double stats_[5] = {};  // framesIn, framesOut, bytesIn, bytesOut, writeDrops
};

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Tap", Tap::Define(env));
  return InitFlowThread(env, InitFlows(env, InitFloor(env, InitUdp(env, InitLinks(env, exports)))));
}

#else  // TAP devices as used here are Linux-only; the wrapper reports this.

Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }

#endif

NODE_API_MODULE(tap, Init)

// Interface operations beyond the addon's own TAP, for IpopConfig/Bridge (src/vpn/bridge.ts):
// making an interface a port of a Linux bridge (or no longer one), bringing an interface up
// and giving it an IPv4 address, both by name through ioctls on a throwaway socket in the caller's network namespace.
#include "links.h"

#ifdef __linux__
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <string>

namespace {

std::string Reason(int err) {
  if (err == EPERM || err == EACCES) return "operation not permitted (run as root or with CAP_NET_ADMIN)";
  std::string s = strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

int IfIoctl(unsigned long req, struct ifreq* ifr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  int rc = ioctl(s, req, ifr) < 0 ? errno : 0;
  close(s);
  return rc;
}

// bridgePort(bridge, port, add): adds `port` to (or removes it from) the Linux bridge `bridge`
// (SIOCBRADDIF/SIOCBRDELIF with the port's ifindex, in the caller's network namespace).
Napi::Value BridgePort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsBoolean()) {
    Napi::TypeError::New(env, "bridgePort(bridge, port, add): two names and a boolean").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string br = info[0].As<Napi::String>(), port = info[1].As<Napi::String>();
  const bool add = info[2].As<Napi::Boolean>().Value();
  const char* what = add ? "SIOCBRADDIF" : "SIOCBRDELIF";
  if (br.empty() || br.size() >= IFNAMSIZ) {
    Napi::Error::New(env, std::string(what) + ": invalid bridge name '" + br + "'").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  unsigned int index = if_nametoindex(port.c_str());
  if (index == 0) {
    Napi::Error::New(env, std::string(what) + " " + br + " " + port + ": " + Reason(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct ifreq ifr = {};
  memcpy(ifr.ifr_name, br.data(), br.size());
  ifr.ifr_ifindex = static_cast<int>(index);
  int e = IfIoctl(add ? SIOCBRADDIF : SIOCBRDELIF, &ifr);
  if (e != 0) Napi::Error::New(env, std::string(what) + " " + br + " " + port + ": " + Reason(e)).ThrowAsJavaScriptException();
  return env.Undefined();
}

// linkUp(name): sets IFF_UP on any interface (a bridge, say).
Napi::Value LinkUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "linkUp(name): name must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>();
  if (name.empty() || name.size() >= IFNAMSIZ) {
    Napi::Error::New(env, "linkUp: invalid interface name '" + name + "'").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct ifreq ifr = {};
  memcpy(ifr.ifr_name, name.data(), name.size());
  int e = IfIoctl(SIOCGIFFLAGS, &ifr);
  if (e == 0) {
    ifr.ifr_flags |= IFF_UP;
    e = IfIoctl(SIOCSIFFLAGS, &ifr);
  }
  if (e != 0) Napi::Error::New(env, "SIOCSIFFLAGS " + name + " up: " + Reason(e)).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

// setIPv4(name, address, prefixLength): gives any interface (a bridge, say) an IPv4 address and
// netmask (SIOCSIFADDR, then SIOCSIFNETMASK over the classful mask the kernel derived).
Napi::Value SetIPv4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "setIPv4(name, address, prefixLength): bad arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>(), text = info[1].As<Napi::String>();
  const int prefix = info[2].As<Napi::Number>().Int32Value();
  struct sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  if (name.empty() || name.size() >= IFNAMSIZ || inet_pton(AF_INET, text.c_str(), &sin.sin_addr) != 1 || prefix < 0 || prefix > 32) {
    Napi::Error::New(env, "setIPv4: invalid interface or address '" + name + "' " + text + "/" + std::to_string(prefix)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct ifreq ifr = {};
  memcpy(ifr.ifr_name, name.data(), name.size());
  memcpy(&ifr.ifr_addr, &sin, sizeof sin);
  int e = IfIoctl(SIOCSIFADDR, &ifr);
  if (e == 0) {
    sin.sin_addr.s_addr = htonl(prefix == 0 ? 0 : 0xffffffffu << (32 - prefix));
    memset(&ifr.ifr_addr, 0, sizeof ifr.ifr_addr);
    memcpy(&ifr.ifr_netmask, &sin, sizeof sin);
    e = IfIoctl(SIOCSIFNETMASK, &ifr);
  }
  if (e != 0) Napi::Error::New(env, name + ": SIOCSIFADDR " + text + "/" + std::to_string(prefix) + ": " + Reason(e)).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Object InitLinks(Napi::Env env, Napi::Object exports) {
  exports.Set("setIPv4", Napi::Function::New(env, SetIPv4, "setIPv4"));
  exports.Set("bridgePort", Napi::Function::New(env, BridgePort, "bridgePort"));
  exports.Set("linkUp", Napi::Function::New(env, LinkUp, "linkUp"));
  return exports;
}

#endif  // __linux__: tap.cc calls InitLinks only there

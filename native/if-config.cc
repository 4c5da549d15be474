// Interface ioctls go through a throwaway socket (of the address family the request is about)
// in the caller's network namespace (if-config.h).
#include "if-config.h"

#ifdef __linux__
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace {

// The kernel's struct in6_ifreq (linux/ipv6.h clashes with glibc's netinet/in.h).
struct In6Ifreq {
  struct in6_addr ifr6_addr;
  uint32_t ifr6_prefixlen;
  int ifr6_ifindex;
};

int IfIoctl(unsigned long req, void* arg, int family = AF_INET) {
  int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  int rc = ioctl(s, req, arg) < 0 ? errno : 0;
  close(s);
  return rc;
}

// One request on the named interface; "" or "WHAT NAME [ARG]: reason".
std::string Ctl(const std::string& name, unsigned long req, const char* what, struct ifreq* ifr, const std::string& arg = "") {
  strncpy(ifr->ifr_name, name.c_str(), IFNAMSIZ - 1);
  int e = IfIoctl(req, ifr);
  if (e == 0) return "";
  return std::string(what) + " " + name + (arg.empty() ? "" : " " + arg) + ": " + IfReason(e);
}

}  // namespace

std::string IfReason(int err) {
  switch (err) {
    case EPERM:
    case EACCES: return "operation not permitted (run as root or with CAP_NET_ADMIN)";
    case EBUSY: return "device busy";
    default: {
      std::string s = strerror(err);
      if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
      return s;
    }
  }
}

std::string IfMac(const std::string& name, uint8_t mac[6]) {
  struct ifreq ifr = {};
  std::string err = Ctl(name, SIOCGIFHWADDR, "SIOCGIFHWADDR", &ifr);
  if (err.empty()) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  return err;
}

std::string IfSetMtu(const std::string& name, int mtu) {
  struct ifreq ifr = {};
  ifr.ifr_mtu = mtu;
  return Ctl(name, SIOCSIFMTU, "SIOCSIFMTU", &ifr, std::to_string(mtu));
}

std::string IfCheckAddress(int family, const std::string& address, int prefix) {
  const bool v4 = family == AF_INET;
  uint8_t buf[16];
  if (inet_pton(family, address.c_str(), buf) == 1 && prefix >= 0 && prefix <= (v4 ? 32 : 128)) return "";
  return std::string(v4 ? "invalid IPv4 address " : "invalid IPv6 address ") + address + "/" + std::to_string(prefix);
}

std::string IfSetIPv4(const std::string& name, const std::string& address, int prefix) {
  struct sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  inet_pton(AF_INET, address.c_str(), &sin.sin_addr);
  struct ifreq ifr = {};
  memcpy(&ifr.ifr_addr, &sin, sizeof sin);
  std::string err = Ctl(name, SIOCSIFADDR, "SIOCSIFADDR", &ifr, address);
  if (!err.empty()) return err;
  // The kernel derived a classful mask from the address; replace it (and the broadcast with it).
  sin.sin_addr.s_addr = htonl(prefix == 0 ? 0 : 0xffffffffu << (32 - prefix));
  memset(&ifr, 0, sizeof ifr);
  memcpy(&ifr.ifr_netmask, &sin, sizeof sin);
  return Ctl(name, SIOCSIFNETMASK, "SIOCSIFNETMASK", &ifr, "/" + std::to_string(prefix));
}

// Adds an IPv6 address (SIOCSIFADDR on an AF_INET6 socket takes a struct in6_ifreq).
std::string IfSetIPv6(const std::string& name, const std::string& address, int prefix) {
  In6Ifreq req = {};
  inet_pton(AF_INET6, address.c_str(), &req.ifr6_addr);
  struct ifreq ifr = {};
  std::string err = Ctl(name, SIOCGIFINDEX, "SIOCGIFINDEX", &ifr);
  if (!err.empty()) return err;
  req.ifr6_ifindex = ifr.ifr_ifindex;
  req.ifr6_prefixlen = static_cast<uint32_t>(prefix);
  int e = IfIoctl(SIOCSIFADDR, &req, AF_INET6);
  if (e == EAFNOSUPPORT) return "IPv6 is not available in this kernel or namespace";
  if (e != 0 && e != EEXIST) return name + ": SIOCSIFADDR " + address + ": " + IfReason(e);
  return "";
}

std::string IfUp(const std::string& name) {
  struct ifreq ifr = {};
  std::string err = Ctl(name, SIOCGIFFLAGS, "SIOCGIFFLAGS", &ifr);
  if (!err.empty()) return err;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  return Ctl(name, SIOCSIFFLAGS, "SIOCSIFFLAGS", &ifr);
}
#endif

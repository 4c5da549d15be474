// Interface configuration by name through ioctls (if-config.cc), for the TAP device (tap.cc):
// each call returns "" on success or the error message the JS caller gets.
#pragma once
#ifdef __linux__
#include <cstdint>
#include <string>

// errno as a lower-case reason, with a hint for missing privileges.
std::string IfReason(int err);

std::string IfMac(const std::string& name, uint8_t mac[6]);
std::string IfSetMtu(const std::string& name, int mtu);
// address: dotted IPv4 / IPv6 text, already checked by IfParseAddress.
std::string IfSetIPv4(const std::string& name, const std::string& address, int prefix);
std::string IfSetIPv6(const std::string& name, const std::string& address, int prefix);
std::string IfUp(const std::string& name);
// "" when address/prefix is a valid address of the family (AF_INET or AF_INET6), else the message.
std::string IfCheckAddress(int family, const std::string& address, int prefix);
#endif

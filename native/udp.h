// The addon's batched UDP socket (native/udp.cc), for the UDP edge listener's fast path.
#pragma once
#include <napi.h>

// Adds the UdpSocket class to the addon's exports.
Napi::Object InitUdp(Napi::Env env, Napi::Object exports);

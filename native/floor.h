// The native floor relay of bench:vpn (native/floor.cc).
#pragma once
#include <napi.h>

// Adds the NativeFloor class to the addon's exports.
Napi::Object InitFloor(Napi::Env env, Napi::Object exports);

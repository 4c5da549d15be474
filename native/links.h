// Functions of the addon on interfaces other than its own TAP (native/links.cc).
#pragma once
#include <napi.h>

// Adds bridgePort(bridge, port, add), linkUp(name) and setIPv4(name, address, prefix) to the addon's exports.
Napi::Object InitLinks(Napi::Env env, Napi::Object exports);

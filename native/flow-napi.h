// The native flow table's JS class (native/flow-napi.cc).
#pragma once
#include <napi.h>

// Adds the FlowTable class to the addon's exports.
Napi::Object InitFlows(Napi::Env env, Napi::Object exports);

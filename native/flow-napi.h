// The native flow table's JS class (native/flow-napi.cc).
#pragma once
#include <napi.h>

#include <string>

// Adds the FlowTable class to the addon's exports.
Napi::Object InitFlows(Napi::Env env, Napi::Object exports);

struct FlowSpec;
// Reads a flow spec (the shape documented in flow-napi.cc) from JS; false with a one-line reason.
bool ParseFlowSpec(Napi::Object o, FlowSpec* s, std::string* err);

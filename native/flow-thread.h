// The native fast path's I/O thread (flow-thread.cc): FlowThread on the addon's exports.
#pragma once
#include <napi.h>

Napi::Object InitFlowThread(Napi::Env env, Napi::Object exports);

// Registers copyStart / clearStart / checksumStart (copy.cc) on the addon's exports.
#pragma once

#include <napi.h>

namespace cinderblock {

void InitCopy(Napi::Env env, Napi::Object exports);

}  // namespace cinderblock

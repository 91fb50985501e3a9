// Entry point of cinderblock_native. Typed access goes through src/native/ in TypeScript;
// nothing else should require the .node file directly.
#include "common.h"
#include "copy.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  cinderblock::InitBlockdev(env, exports);
  cinderblock::InitReflink(env, exports);
  cinderblock::InitLock(env, exports);
  cinderblock::InitSdNotify(env, exports);
  cinderblock::InitCopy(env, exports);
  cinderblock::InitDm(env, exports);
  cinderblock::InitDirectRead(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(cinderblock_native, Init)

// ioprio_set(2) by syscall: glibc has no wrapper.
#include "ioprio.h"

#include <linux/ioprio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace cinderblock {
namespace copyengine {

int IoprioValue(int cls, int level) {
  if (cls == 0) return 0;
  return IOPRIO_PRIO_VALUE(cls, cls == IOPRIO_CLASS_IDLE ? 0 : level);
}

int IoprioSet(int cls, int level) {
  if (cls == 0) return 0;
  // who=0 with IOPRIO_WHO_PROCESS means the calling thread (I/O priority is per task).
  return syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IoprioValue(cls, level)) == 0 ? 0 : errno;
}

}  // namespace copyengine
}  // namespace cinderblock

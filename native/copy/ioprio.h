// The I/O priority of a job (Options.ioprioClass/ioprioLevel, like `ionice -c CLASS -n LEVEL`).
// It is per thread, so every thread of the job sets it, and io_uring requests carry it as well.
#pragma once

namespace cinderblock {
namespace copyengine {

// The value ioprio_set(2) and an SQE's ioprio take; 0 (leave as is) for class 0. The idle class
// has no levels.
int IoprioValue(int cls, int level);
// Sets it on the calling thread. 0 or errno; class 0 changes nothing.
int IoprioSet(int cls, int level);

}  // namespace copyengine
}  // namespace cinderblock

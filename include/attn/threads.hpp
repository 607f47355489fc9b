// How many threads attn's kernels use, for the whole process, as torch's
// set_num_threads: every thread that calls attn, and OpenBLAS's pool for the
// projections, follow the one count. The default is the number of cores OpenMP
// sees (OMP_NUM_THREADS if set). Results do not depend on it: every kernel splits
// its work into tasks whose results do not depend on the thread that runs them, so
// the output is bitwise the same for any thread count.
#pragma once

namespace attn {

// Threads for the kernels from now on; n >= 1, else attn::Error.
void set_num_threads(int n);
int num_threads();

}  // namespace attn

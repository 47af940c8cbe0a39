// COMPILE-CHECK STAND-IN (see ../../../cuda_runtime_api.h): the header libtorch's CMake build generates
// and Debian's libtorch-dev does not ship.
#pragma once
#define C10_CUDA_BUILD_SHARED_LIBS

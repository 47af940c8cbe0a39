// COMPILE-CHECK STAND-IN, NOT CUDA (see cuda_runtime_api.h beside it).
#pragma once
#include "cuda_runtime_api.h"

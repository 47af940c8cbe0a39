// Precompiled header: the heavy includes every translation unit needs.
#pragma once
#include <napi.h>
#include <torch/torch.h>

// Accuracy of a model run against the fp32 run of the same model on the same input (issue 3
// item 7): what the `model` kind stores in acc_cosine, acc_rel_error, acc_kl and acc_top1.
// Thread-safety: pure functions.
#pragma once

#include <span>

#include "core/error.hpp"
#include "engine/model/transformer.hpp"

namespace ipfsa::engine {

struct Accuracy {
  double cosine = 0.0;     // mean over positions of cos(h, h_ref) of the final hidden states
  double rel_error = 0.0;  // ||h - h_ref|| / ||h_ref|| over all final hidden states
  double kl = 0.0;         // mean over logit rows of KL(softmax(ref) || softmax(out)), nats
  double top1 = 0.0;       // fraction of logit rows whose argmax agrees with the reference
};

// Compares `out` with the reference `ref` (same model shape, same input). Logit rows are the last
// dimension of logits_shape. Error (kInput) when the shapes differ or there are no hidden states.
// Identical outputs give cosine 1, rel_error 0, kl 0, top1 1.
Result<Accuracy> compare_outputs(const ModelOutput& ref, const ModelOutput& out);

}  // namespace ipfsa::engine

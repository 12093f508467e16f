"""The VQA head on ONNX Runtime: ``answer`` and ``check_question`` of a ``VqaHead`` (on the CPU),
the head's graph exported once per question length (a question's words are its only variable
dimension; cached on disk with ``OnnxSettings.cache_dir``). No ROS."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from approxbit_ros.vqa.model import Answer, VqaHead
from offload_common.onnx_runtime import OnnxModule, OnnxSettings


class OnnxVqaHead:
    def __init__(self, head: VqaHead, settings: Optional[OnnxSettings] = None, name: str = "vqa-head"):
        self.head, self.config = head.eval(), head.config
        self.settings, self.name = settings or OnnxSettings(), name
        self._sessions: Dict[int, OnnxModule] = {}

    def check_question(self, question: str):
        return self.head.check_question(question)

    def _session(self, length: int) -> OnnxModule:
        if length not in self._sessions:
            c = self.config
            examples = (torch.zeros(1, c.feature_dim, *c.grid), torch.zeros(1, length, dtype=torch.long),
                        torch.ones(1, length, dtype=torch.bool))
            self._sessions[length] = OnnxModule(self.head, examples, self.settings, f"{self.name}-l{length}",
                                                input_names=("feature_map", "word_ids", "word_mask"),
                                                output_names=("logits",))
        return self._sessions[length]

    def answer(self, feature_map: torch.Tensor, question: str, top: int = 3) -> Answer:
        """``VqaHead.answer`` with the head's forward on ONNX Runtime."""
        ids, mask, unknown = self.head.encode_questions([question])
        logits = self._session(ids.shape[1])(np.ascontiguousarray(feature_map.float().cpu().numpy()),
                                             ids.numpy(), mask.numpy())[0]
        probs = torch.softmax(torch.from_numpy(logits)[0], dim=0)
        scores, idx = probs.topk(min(top, probs.numel()))
        cands = tuple(self.config.answers[i] for i in idx.tolist())
        return Answer(question, cands[0], float(scores[0]), cands, tuple(float(s) for s in scores), unknown[0])

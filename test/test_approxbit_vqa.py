"""ApproxBit video question answering, without ROS: the templated questions and their answers,
the answer head (words, shapes, saving), training on a frozen backbone, and the committed head
answering held-out clips through the configurations' decoded features."""
import os

import numpy as np
import pytest
import torch

from approxbit_ros.data.synthetic_actions import CLASSES, SyntheticActions
from approxbit_ros.vqa.model import QuestionError, VqaHead, VqaHeadConfig, vqa_folder
from approxbit_ros.vqa.questions import (FACTS, PLACES, QUESTION_TYPES, answer, answer_vocabulary, place, qa_pairs,
                                         question_vocabulary, words)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")
needs_backbone = pytest.mark.skipif(not os.path.isfile(os.path.join(BACKBONE, "model.safetensors")),
                                    reason="trained ApproxBit backbone not present")


def test_the_answer_depends_on_the_question_and_on_the_clip():
    ds = SyntheticActions("test", 26)
    _, label, layout = ds.with_layout(CLASSES.index("appearing"))
    assert answer("start", "appearing", layout) == "no" and answer("end", "appearing", layout) == "yes"
    assert answer("start place", "appearing", layout) == "it is not visible"
    assert answer("end place", "appearing", layout) in PLACES[:3]
    # same class, different clips: the place answers follow where this clip's object is
    ends = {answer("end place", "moving right", ds.with_layout(i)[2]) for i in range(1, 26, 13)}
    starts = {answer("start place", "moving right", ds.with_layout(i)[2]) for i in range(1, 26, 13)}
    assert ends <= {"in the middle", "on the right"} and starts <= {"on the left", "in the middle"}
    pairs = qa_pairs(label, layout)
    assert len(pairs) == sum(len(q.phrasings) for q in QUESTION_TYPES)
    assert {a for _, _, a in pairs} <= set(answer_vocabulary())


def test_every_class_has_every_fact_and_the_answers_tell_the_classes_apart():
    assert set(FACTS) == set(CLASSES)
    facts = {c: tuple(answer(q.name, c) for q in QUESTION_TYPES if q.name not in ("action", "start place",
                                                                                   "end place")) for c in CLASSES}
    # the non-action facts alone separate most classes (not all: left/right moving vs pushing differ in "hits")
    assert len(set(facts.values())) == len(CLASSES)


@pytest.mark.parametrize("x, alpha, where", [(0.1, 1.0, "on the left"), (0.5, 1.0, "in the middle"),
                                             (0.9, 0.8, "on the right"), (0.5, 0.2, "it is not visible")])
def test_place_is_the_third_of_the_frame_the_object_is_in(x, alpha, where):
    assert place(x, alpha) == where


def test_words_ignore_case_and_punctuation_and_keep_hyphens():
    assert words("Which way does it turn? Counter-clockwise!") == ["which", "way", "does", "it", "turn",
                                                                   "counter-clockwise"]
    assert "object" in question_vocabulary() and "?" not in "".join(question_vocabulary())


def _tiny_head(**kw):
    torch.manual_seed(0)
    return VqaHead(VqaHeadConfig(feature_dim=8, grid=[2, 2, 2], hidden=16, **kw)).eval()


def test_the_head_reads_known_words_and_reports_the_others():
    head = _tiny_head()
    assert head.check_question("which way does the object move?") == ()
    assert head.check_question("which way does the zebra move?") == ("zebra",)
    with pytest.raises(QuestionError, match="no word"):
        head.check_question("quelle heure est-il?")
    ids, mask, _ = head.encode_questions(["what is happening?", "which way does the object move?"])
    assert ids.shape == mask.shape and mask.sum(1).tolist() == [3, 6]


def test_the_head_refuses_a_map_of_another_shape():
    head = _tiny_head()
    ids, mask, _ = head.encode_questions(["what is happening?"])
    assert head(torch.zeros(1, 8, 2, 2, 2), ids, mask).shape == (1, len(answer_vocabulary()))
    with pytest.raises(ValueError, match="clip size"):
        head(torch.zeros(1, 8, 4, 4, 4), ids, mask)


def test_a_saved_head_answers_exactly_as_before(tmp_path):
    head = _tiny_head()
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn_like(p))
    fmap = torch.randn(1, 8, 2, 2, 2)
    before = head.answer(fmap, "where is the object at the end?")
    head.save_pretrained(str(tmp_path), extra={"note": "test"})
    after = VqaHead.from_pretrained(str(tmp_path)).answer(fmap, "where is the object at the end?")
    assert after == before and before.candidates[0] == before.answer and len(before.candidates) == 3


@needs_backbone
def test_training_on_the_frozen_backbone_beats_the_no_video_baseline():
    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.vqa.training import (VqaTrainingConfig, answer_accuracy, blind_accuracy, new_head,
                                            split_answers, split_features, train_head)

    torch.set_num_threads(2)
    configs = ConfigurationSet.from_pretrained(BACKBONE, only=[])
    before = {k: v.clone() for k, v in configs.backbone.state_dict().items()}
    head = new_head(configs)
    train = split_features(configs, "train", 390, answers=head.config.answers)
    test = split_features(configs, "test", 130, answers=head.config.answers)
    losses = train_head(head, train, VqaTrainingConfig(epochs=6, batch_size=128), progress=False)
    assert torch.equal(split_answers("test", 130, head.config.answers), test.answers)   # no model needed
    acc, blind = answer_accuracy(head, test), blind_accuracy(train.answers, test.answers)
    assert losses[-1] < losses[0] / 3
    assert acc["all"] > blind["all"] + 0.15, (acc, blind)
    assert acc["action"] > 0.5 > blind["action"]            # 13 classes: the blind baseline reads 1/13
    assert all(torch.equal(before[k], v) for k, v in configs.backbone.state_dict().items())     # frozen


@needs_backbone
@pytest.mark.skipif(not os.path.isdir(vqa_folder(BACKBONE)), reason="committed VQA head not present")
def test_the_committed_head_answers_held_out_clips_through_the_binary_codes():
    """Every question about held-out clips, from the features the server rebuilds from an
    Enc configuration's bits: close to edge-only, and far above the no-video baseline."""
    from approxbit_ros.configurations import EDGE_ONLY, ConfigurationSet
    from approxbit_ros.vqa.training import evaluate_configurations

    torch.set_num_threads(2)
    configs = ConfigurationSet.from_pretrained(BACKBONE, only=["o1/enc/k8"], raw_features=False)
    head = VqaHead.from_pretrained(vqa_folder(BACKBONE))
    res = evaluate_configurations(head, configs, 130, progress=False)
    edge, coded = res[EDGE_ONLY], res["cnn3d/o1/enc/k8"]
    assert edge["all"] > 0.9 and coded["all"] > edge["all"] - 0.05, res
    assert coded["action"] > 0.85 and coded["direction"] > 0.85


@needs_backbone
def test_the_pipeline_hands_the_final_map_to_the_head_on_both_sides():
    """The server's map (decoded bits) and the edge-only map both pool to the published prediction."""
    from approxbit_ros.configurations import EDGE_ONLY, ConfigurationSet
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer, predict_topk

    configs = ConfigurationSet.from_pretrained(BACKBONE, only=["o2/enc/k4"], raw_features=False)
    clip, _ = SyntheticActions("test", 13)[3]
    edge, server = ApproxBitEdge(configs, "cnn3d/o2/enc/k4"), ApproxBitServer(configs)
    res = server.handle("s", 0, **edge.process(clip).wire_fields(configs.name))
    edge.set_config(EDGE_ONLY)
    out = edge.process(clip)
    bb = configs.backbone
    for fmap, pred in ((res.final_map, res.prediction), (out.final_map, out.prediction)):
        assert tuple(fmap.shape) == (1, 64, 4, 4, 4)
        with torch.no_grad():
            again = predict_topk(bb.classify_map(fmap), configs.labels)
        assert again.topk_ids == pred.topk_ids and np.isclose(again.score, pred.score)

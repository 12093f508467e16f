"""Distilling a trained backbone into another: run_blocks composes the split, hints are parsed
and range-checked, the teacher stays frozen, training follows the teacher, and a distilled run
resumes with its adapters."""
import pytest
import torch

from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig
from approxbit_ros.backbones.videomae import VideoMaeBackbone, small_videomae_config
from approxbit_ros.data.synthetic_actions import CLASSES, SyntheticActions, clip_batch
from approxbit_ros.training.distillation import DistillationConfig, Distiller, parse_hints, resample


def small_student():
    cfg = small_videomae_config(len(CLASSES), CLASSES, size=32)
    cfg.num_hidden_layers = 2
    return VideoMaeBackbone.from_config(cfg)


def clips(n=4):
    x, y = clip_batch(SyntheticActions("train", n), list(range(n)))
    return torch.from_numpy(x), torch.from_numpy(y)


@pytest.mark.parametrize("kind", ["cnn3d", "videomae"])
def test_run_blocks_composes_edge_and_server(kind):
    torch.manual_seed(0)
    model = Cnn3dBackbone(Cnn3dConfig()).eval() if kind == "cnn3d" else small_student().eval()
    x = model.preprocess(clips(2)[0])
    with torch.no_grad():
        full = model(x)
        h = model.edge(x, 1)
        torch.testing.assert_close(model.run_blocks(h, 1, model.num_blocks), model.edge(x, model.num_blocks))
        torch.testing.assert_close(model.server(model.run_blocks(h, 1, 2), 2), full, rtol=1e-4, atol=1e-5)


def test_parse_hints_and_range_checks():
    assert parse_hints("3:4, 6:6") == [(3, 4), (6, 6)]
    with pytest.raises(ValueError, match="student_layer:teacher_block"):
        parse_hints("3")
    torch.manual_seed(0)
    teacher = Cnn3dBackbone(Cnn3dConfig())
    with pytest.raises(ValueError, match="out of range"):
        Distiller(small_student(), teacher, DistillationConfig(hints=[(3, 4)]))     # student has 2 layers
    with pytest.raises(ValueError, match="out of range"):
        Distiller(small_student(), teacher, DistillationConfig(hints=[(1, 9)]))


def test_resample_pools_larger_maps_and_interpolates_smaller_ones():
    big = torch.arange(2 * 8 * 8 * 8, dtype=torch.float32).view(1, 2, 8, 8, 8)
    pooled = resample(big, (4, 4, 4))
    assert pooled.shape == (1, 2, 4, 4, 4)
    torch.testing.assert_close(pooled[0, 0, 0, 0, 0], big[0, 0, :2, :2, :2].mean())
    small = torch.ones(1, 3, 2, 2, 2)
    torch.testing.assert_close(resample(small, (4, 8, 8)), torch.ones(1, 3, 4, 8, 8))


def test_distillation_trains_the_student_towards_the_teacher_and_leaves_the_teacher_alone():
    torch.manual_seed(0)
    teacher, student = Cnn3dBackbone(Cnn3dConfig()).eval(), small_student()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    d = Distiller(student, teacher, DistillationConfig(hints=[(1, 3), (2, 6)], alpha=1.0))
    x, y = clips(8)
    opt = torch.optim.Adam(list(student.parameters()) + list(d.trainable_parameters()), lr=3e-3)
    first = None
    for _ in range(30):
        loss, logits, parts = d.loss(student, x, y)
        assert logits.shape == (8, len(CLASSES)) and set(parts) == {"ce", "kd", "hint"}
        first = first if first is not None else parts
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["hint"] < 0.7 * first["hint"] and parts["kd"] < 0.7 * first["kd"]
    for k, v in teacher.state_dict().items():
        torch.testing.assert_close(v, before[k])                 # frozen, batch-norm statistics too
    assert all(p.grad is None for p in teacher.parameters())


def test_distilled_training_resumes_with_its_adapters(tmp_path):
    from approxbit_ros.training.backbone_training import BackboneTrainer, BackboneTrainingConfig

    cfg = BackboneTrainingConfig(epochs=2, clips_per_epoch=8, batch_size=4, val_clips=13, lr=1e-3)

    def trainer():
        torch.manual_seed(0)
        student = small_student()
        return BackboneTrainer(student, cfg, Distiller(student, Cnn3dBackbone(Cnn3dConfig()),
                                                       DistillationConfig(hints=[(2, 4)])))
    t1 = trainer()
    t1.train(str(tmp_path), progress=False, stop_after=1)
    t2 = trainer()
    t2.load_checkpoint(str(tmp_path))
    assert t2.epoch == 1
    for a, b in zip(t1.distiller.adapters.state_dict().values(), t2.distiller.adapters.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert len(t2.train(progress=False)) == 2

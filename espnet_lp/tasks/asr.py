"""LPASRTask: ESPnet's ASR task plus the ``lp_decoder`` and ``kd`` component choices.

Every stock option keeps its meaning; ``--lp_decoder/--lp_decoder_conf`` and ``--kd/--kd_conf``
are added (and appear in ``--print_config`` and in the ``config.yaml`` of a run).
"""

import argparse
import logging

from espnet2.tasks.asr import ASRTask
from espnet2.train.class_choices import ClassChoices
from espnet2.train.trainer import Trainer

from espnet_lp.asr.espnet_model import ESPnetLPASRModel
from espnet_lp.asr.kd import AbsKDCriterion, CTCKLCriterion
from espnet_lp.asr.loss_predictor import AbsLPDecoder, LPMLPDecoder
from espnet_lp.registry import register

register()  # also done on import of espnet2.tasks.asr; explicit for readers of this module

lp_decoder_choices = ClassChoices(
    "lp_decoder",
    classes=dict(lp_mlp=LPMLPDecoder),
    type_check=AbsLPDecoder,
    default=None,
    optional=True,
)
kd_choices = ClassChoices(
    "kd",
    classes=dict(ctc_kl=CTCKLCriterion),
    type_check=AbsKDCriterion,
    default=None,
    optional=True,
)


class LPTrainer(Trainer):
    """ESPnet's trainer, telling the model the current epoch (for ``detach_after_epoch``)."""

    @classmethod
    def train_one_epoch(cls, model, *args, reporter, **kwargs) -> bool:
        core = getattr(model, "module", model)  # unwrap DDP / DataParallel
        if hasattr(core, "set_epoch"):
            core.set_epoch(reporter.epoch)
        return super().train_one_epoch(model, *args, reporter=reporter, **kwargs)


class LPASRTask(ASRTask):
    """ASR task with loss prediction (and knowledge distillation)."""

    class_choices_list = ASRTask.class_choices_list + [lp_decoder_choices, kd_choices]
    trainer = LPTrainer
    _skip_kd = False

    @classmethod
    def build_model_from_file(cls, config_file=None, model_file=None, device: str = "cpu"):
        """ESPnet's loader; KD is a training-time loss, so the teacher is not loaded (a
        decoding or scoring machine need not have it)."""
        cls._skip_kd = True
        try:
            return super().build_model_from_file(config_file, model_file, device)
        finally:
            cls._skip_kd = False

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ESPnetLPASRModel:
        """Build the stock ASR model, then attach the LP decoder it is configured with."""
        model = super().build_model(args)
        wants_kd = getattr(args, "kd", None) is not None or getattr(model, "kd_weight", 0.0) > 0
        if wants_kd and not cls._skip_kd:
            cls._attach_kd(model, args)
        lp_name = getattr(args, "lp_decoder", None)
        if lp_name is None:
            return model
        if not isinstance(model, ESPnetLPASRModel):
            raise ValueError(f"--lp_decoder {lp_name} needs '--model lp_espnet', "
                             f"got --model {getattr(args, 'model', 'espnet')}")
        decoder = model.decoder
        dec_size = getattr(decoder, "_output_size_bf_softmax", None)
        if dec_size is None and decoder is not None:
            dec_size = model.encoder.output_size()  # ESPnet decoders attend at encoder width
        lp_class = lp_decoder_choices.get_class(lp_name)
        lp = lp_class(encoder_output_size=model.encoder.output_size(),
                      decoder_output_size=dec_size, **args.lp_decoder_conf)
        model.set_lp_decoder(lp)
        logging.info("Loss-prediction decoder: %s (%d parameters)", lp_name,
                     sum(p.numel() for p in lp.parameters()))
        return model

    @classmethod
    def _attach_kd(cls, model, args: argparse.Namespace) -> None:
        if not isinstance(model, ESPnetLPASRModel):
            raise ValueError("--kd needs '--model lp_espnet'")
        if getattr(args, "kd", None) is None:
            raise ValueError(f"model_conf.kd_weight={model.kd_weight} needs a KD criterion "
                             "(--kd ctc_kl with --kd_conf teacher=...)")
        if model.kd_weight == 0.0:
            logging.warning("--kd %s is configured but model_conf.kd_weight is 0: KD is off",
                            args.kd)
        kd = kd_choices.get_class(args.kd)(**args.kd_conf)
        model.set_kd(kd)
        logging.info("Knowledge distillation: %s, kd_weight %s", args.kd, model.kd_weight)

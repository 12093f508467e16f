"""A tiny random LLaVA-OneVision written by the test: a 4-layer SigLIP vision encoder on 32x32
frames (4x4 patches), a 2-layer Qwen2 language model and a word-level tokenizer with the chat
template's special tokens, saved as a local snapshot folder (config.json, safetensors,
tokenizer, preprocessor_config.json). Nothing is downloaded."""
import json
import os

WORDS = ("user assistant what which way does the object move moves is it left right up down nothing "
         "where colour red green blue a an one two three yes no ? . , \n").split(" ")
SPECIAL = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<video>", "<image>"]


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL + [w for w in WORDS if w])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")          # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>",
                                   additional_special_tokens=["<|im_start|>", "<video>", "<image>"])


def write_tiny_llava(folder, seed: int = 0, vision_layers: int = 4):
    import torch
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, Qwen2Config, SiglipVisionConfig

    tokenizer = tiny_tokenizer()
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=vision_layers,
                                num_attention_heads=2, image_size=32, patch_size=8)
    text = Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=1, vocab_size=len(tokenizer), max_position_embeddings=512,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = LlavaOnevisionConfig(vision_config=vision, text_config=text,
                                  video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
                                  image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                                  vision_feature_layer=-1, vision_feature_select_strategy="full")
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    with torch.no_grad():                                  # a newline token that is not all zeros
        model.model.image_newline.normal_(0, 0.02)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "size": {"height": 32, "width": 32}}, f)
    return folder

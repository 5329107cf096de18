//! CTranslate2 (faster-whisper) → whisper.cpp legacy ggml converter.
//!
//! A byte-exact port of the reference `ct2_to_ggml_whisper.py` (tensor names and order, f16/f32
//! rules, header layout), so the result is the file whisper.cpp's own converter would write. The
//! output is streamed tensor by tensor from the input file: peak memory is one copy buffer, not the
//! model.

use std::fs::File;
use std::io::{BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use half::f16;

use super::ct2::{Ct2Dtype, Ct2Model, Ct2Var};
use super::npz::{read_npz_f32, ArrayF32};
use crate::error::{ModelsError, Result};

/// Bumped whenever the output bytes could change; part of the converted-file cache key.
pub const CONVERTER_VERSION: &str = "fd-whisper-ct2-ggml/1";

const GGML_MAGIC: u32 = 0x6767_6d6c;
const COPY_CHUNK: u64 = 1 << 20;

/// Whisper hyper-parameters as written into the ggml header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperHparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    /// Always 1 (mostly f16), as the reference writes.
    pub ftype: i32,
}

impl WhisperHparams {
    fn as_array(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }
    /// Multilingual models have the larger vocabulary (the reference's rule).
    pub fn multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }
}

/// The openai-whisper assets directory (`mel_filters.npz`, `gpt2.tiktoken`, `multilingual.tiktoken`).
#[derive(Debug, Clone)]
pub struct WhisperAssets {
    pub dir: PathBuf,
}

impl WhisperAssets {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn mel_filters_path(&self) -> PathBuf {
        self.dir.join("mel_filters.npz")
    }
    pub fn tiktoken_path(&self, multilingual: bool) -> PathBuf {
        self.dir.join(if multilingual {
            "multilingual.tiktoken"
        } else {
            "gpt2.tiktoken"
        })
    }
    fn mel_filters(&self, n_mels: i32) -> Result<ArrayF32> {
        let path = self.mel_filters_path();
        let a = read_npz_f32(&path, &format!("mel_{n_mels}"))?;
        if a.shape.len() != 2 {
            return Err(ModelsError::Asset {
                path,
                reason: format!("mel_{n_mels} has shape {:?}, expected 2-D", a.shape),
            });
        }
        Ok(a)
    }
    fn tokens(&self, multilingual: bool) -> Result<Vec<Vec<u8>>> {
        let path = self.tiktoken_path(multilingual);
        let bytes = std::fs::read(&path).map_err(|e| ModelsError::io("read", &path, e))?;
        parse_tiktoken(&bytes).map_err(|reason| ModelsError::Asset { path, reason })
    }
}

/// Tokens of a tiktoken file: one `base64 rank` pair per line, in file order.
fn parse_tiktoken(bytes: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut tokens = Vec::new();
    // Python's bytes.splitlines(): \n, \r\n and \r all end a line.
    for (i, line) in bytes
        .split(|&b| b == b'\n')
        .flat_map(|l| l.split(|&b| b == b'\r'))
        .enumerate()
    {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&[u8]> = line
            .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
            .filter(|f| !f.is_empty())
            .collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 2 {
            return Err(format!("line {} is not `<base64 token> <rank>`", i + 1));
        }
        // multilingual.tiktoken holds a lone "=" (the empty token), which Python's lenient
        // b64decode (the reference) reads as b""; decode without padding to match it.
        let tok = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(fields[0].strip_suffix(b"==").or_else(|| fields[0].strip_suffix(b"=")).unwrap_or(fields[0]))
            .map_err(|e| format!("line {}: bad base64 token: {e}", i + 1))?;
        tokens.push(tok);
    }
    Ok(tokens)
}

/// One output tensor: a (part of a) CT2 variable.
#[derive(Debug, Clone)]
struct Planned {
    name: String,
    var: Ct2Var,
    part: u64,
    parts: u64,
    shape: Vec<u64>,
    f32_out: bool,
}

struct Planner<'a, R> {
    model: &'a Ct2Model,
    r: &'a mut R,
    out: Vec<Planned>,
}

impl<R: Read + Seek> Planner<'_, R> {
    fn var(&self, name: &str) -> Result<Ct2Var> {
        let v = self.model.get(name)?.clone();
        match v.dtype {
            Ct2Dtype::F16 | Ct2Dtype::F32 => Ok(v),
            other => Err(ModelsError::Ct2UnsupportedDtype {
                name: name.to_owned(),
                dtype: other.name().to_owned(),
            }),
        }
    }

    // `%` rather than is_multiple_of: the workspace's MSRV (1.80) predates it.
    #[allow(clippy::manual_is_multiple_of)]
    fn push_part(&mut self, out_name: String, var: Ct2Var, part: u64, parts: u64) -> Result<()> {
        let mut shape: Vec<u64> = var.shape.iter().map(|&d| u64::from(d)).collect();
        if parts > 1 {
            if shape.is_empty() || shape[0] % parts != 0 {
                return Err(ModelsError::Ct2Shape {
                    name: var.name.clone(),
                    shape: var.shape.clone(),
                    reason: "first dimension does not split evenly into fused parts",
                });
            }
            shape[0] /= parts;
        }
        let conv_bias = out_name == "encoder.conv1.bias" || out_name == "encoder.conv2.bias";
        if conv_bias {
            // whisper.cpp wants conv biases as (n, 1).
            shape = vec![shape.iter().product(), 1];
        }
        let f32_out = shape.len() < 2
            || conv_bias
            || out_name == "encoder.positional_embedding"
            || out_name == "decoder.positional_embedding";
        self.out.push(Planned {
            name: out_name,
            var,
            part,
            parts,
            shape,
            f32_out,
        });
        Ok(())
    }

    fn map(&mut self, out_name: &str, ct2_name: &str) -> Result<()> {
        let v = self.var(ct2_name)?;
        self.push_part(out_name.to_owned(), v, 0, 1)
    }

    /// A fused weight/bias pair split into `names.len()` parts along axis 0; `None` parts are
    /// dropped, and the bias part at `zero_bias` must be all zeros (whisper.cpp has no key bias).
    #[allow(clippy::manual_is_multiple_of)]
    fn split(
        &mut self,
        q: &str,
        ct2_prefix: &str,
        names: &[Option<&str>],
        zero_bias: usize,
        bias_names: &[Option<&str>],
    ) -> Result<()> {
        let w = self.var(&format!("{ct2_prefix}/weight"))?;
        let b = self.var(&format!("{ct2_prefix}/bias"))?;
        let parts = names.len() as u64;
        let bias_part_bytes = b.nbytes / parts;
        if b.shape.is_empty() || u64::from(b.shape[0]) % parts != 0 {
            return Err(ModelsError::Ct2Shape {
                name: b.name.clone(),
                shape: b.shape.clone(),
                reason: "fused bias does not split evenly",
            });
        }
        let mut kb = vec![0u8; bias_part_bytes as usize];
        self.model
            .read_range(self.r, &b, bias_part_bytes * zero_bias as u64, &mut kb)?;
        let nonzero = match b.dtype {
            // ±0 both count as zero, as in the reference's abs().max() == 0.
            Ct2Dtype::F16 => kb
                .chunks_exact(2)
                .any(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7fff != 0),
            _ => kb
                .chunks_exact(4)
                .any(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff != 0),
        };
        if nonzero {
            return Err(ModelsError::NonZeroKeyBias {
                name: b.name.clone(),
            });
        }
        // The reference emits weight then bias per part (query.weight, query.bias, key.weight, ...).
        for (k, (wn, bn)) in names.iter().zip(bias_names).enumerate() {
            if let Some(wn) = wn {
                self.push_part(format!("{q}{wn}"), w.clone(), k as u64, parts)?;
            }
            if let Some(bn) = bn {
                self.push_part(format!("{q}{bn}"), b.clone(), k as u64, parts)?;
            }
        }
        Ok(())
    }
}

fn layer_count(model: &Ct2Model, side: &str) -> Result<i32> {
    let prefix = format!("{side}/layer_");
    let max = model
        .vars
        .iter()
        .filter_map(|v| v.name.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('/').next())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|n| n.parse::<i32>().ok())
        .max();
    max.map(|m| m + 1)
        .ok_or_else(|| ModelsError::Ct2MissingVariable {
            name: format!("{side}/layer_0/..."),
        })
}

fn dim(model: &Ct2Model, name: &str, axis: usize, rank: usize) -> Result<i32> {
    let v = model.get(name)?;
    if v.shape.len() != rank {
        return Err(ModelsError::Ct2Shape {
            name: name.to_owned(),
            shape: v.shape.clone(),
            reason: "unexpected rank",
        });
    }
    i32::try_from(v.shape[axis]).map_err(|_| ModelsError::Ct2Shape {
        name: name.to_owned(),
        shape: v.shape.clone(),
        reason: "dimension too large",
    })
}

fn plan<R: Read + Seek>(model: &Ct2Model, r: &mut R) -> Result<(WhisperHparams, Vec<Planned>)> {
    if model.spec != "WhisperSpec" {
        return Err(ModelsError::NotWhisper {
            spec: model.spec.clone(),
        });
    }
    let n_enc = layer_count(model, "encoder")?;
    let n_dec = layer_count(model, "decoder")?;
    let n_vocab = dim(model, "decoder/embeddings/weight", 0, 2)?;
    let n_state = dim(model, "decoder/embeddings/weight", 1, 2)?;
    let hp = WhisperHparams {
        n_vocab,
        n_audio_ctx: dim(model, "encoder/position_encodings/encodings", 0, 2)?,
        n_audio_state: n_state,
        n_audio_head: model.scalar_int(r, "encoder/num_heads")? as i32,
        n_audio_layer: n_enc,
        n_text_ctx: dim(model, "decoder/position_encodings/encodings", 0, 2)?,
        n_text_state: n_state,
        n_text_head: model.scalar_int(r, "decoder/num_heads")? as i32,
        n_text_layer: n_dec,
        n_mels: dim(model, "encoder/conv1/weight", 1, 3)?,
        ftype: 1,
    };

    let mut p = Planner {
        model,
        r,
        out: Vec::new(),
    };
    p.map("encoder.conv1.weight", "encoder/conv1/weight")?;
    p.map("encoder.conv1.bias", "encoder/conv1/bias")?;
    p.map("encoder.conv2.weight", "encoder/conv2/weight")?;
    p.map("encoder.conv2.bias", "encoder/conv2/bias")?;
    p.map(
        "encoder.positional_embedding",
        "encoder/position_encodings/encodings",
    )?;
    let qkv = [
        Some("attn.query.weight"),
        Some("attn.key.weight"),
        Some("attn.value.weight"),
    ];
    let qkv_b = [Some("attn.query.bias"), None, Some("attn.value.bias")];
    for i in 0..n_enc {
        let c = format!("encoder/layer_{i}/");
        let q = format!("encoder.blocks.{i}.");
        p.map(
            &format!("{q}attn_ln.weight"),
            &format!("{c}self_attention/layer_norm/gamma"),
        )?;
        p.map(
            &format!("{q}attn_ln.bias"),
            &format!("{c}self_attention/layer_norm/beta"),
        )?;
        p.split(&q, &format!("{c}self_attention/linear_0"), &qkv, 1, &qkv_b)?;
        mlp_and_out(&mut p, &q, &c)?;
    }
    p.map("encoder.ln_post.weight", "encoder/layer_norm/gamma")?;
    p.map("encoder.ln_post.bias", "encoder/layer_norm/beta")?;
    p.map(
        "decoder.positional_embedding",
        "decoder/position_encodings/encodings",
    )?;
    p.map(
        "decoder.token_embedding.weight",
        "decoder/embeddings/weight",
    )?;
    for i in 0..n_dec {
        let c = format!("decoder/layer_{i}/");
        let q = format!("decoder.blocks.{i}.");
        p.map(
            &format!("{q}attn_ln.weight"),
            &format!("{c}self_attention/layer_norm/gamma"),
        )?;
        p.map(
            &format!("{q}attn_ln.bias"),
            &format!("{c}self_attention/layer_norm/beta"),
        )?;
        p.split(&q, &format!("{c}self_attention/linear_0"), &qkv, 1, &qkv_b)?;
        p.map(
            &format!("{q}attn.out.weight"),
            &format!("{c}self_attention/linear_1/weight"),
        )?;
        p.map(
            &format!("{q}attn.out.bias"),
            &format!("{c}self_attention/linear_1/bias"),
        )?;
        p.map(
            &format!("{q}cross_attn_ln.weight"),
            &format!("{c}attention/layer_norm/gamma"),
        )?;
        p.map(
            &format!("{q}cross_attn_ln.bias"),
            &format!("{c}attention/layer_norm/beta"),
        )?;
        p.map(
            &format!("{q}cross_attn.query.weight"),
            &format!("{c}attention/linear_0/weight"),
        )?;
        p.map(
            &format!("{q}cross_attn.query.bias"),
            &format!("{c}attention/linear_0/bias"),
        )?;
        // Reference order: key.weight, value.weight, value.bias (per part: weight, then bias).
        p.split(
            &q,
            &format!("{c}attention/linear_1"),
            &[
                Some("cross_attn.key.weight"),
                Some("cross_attn.value.weight"),
            ],
            0,
            &[None, Some("cross_attn.value.bias")],
        )?;
        p.map(
            &format!("{q}cross_attn.out.weight"),
            &format!("{c}attention/linear_2/weight"),
        )?;
        p.map(
            &format!("{q}cross_attn.out.bias"),
            &format!("{c}attention/linear_2/bias"),
        )?;
        mlp(&mut p, &q, &c)?;
    }
    p.map("decoder.ln.weight", "decoder/layer_norm/gamma")?;
    p.map("decoder.ln.bias", "decoder/layer_norm/beta")?;
    Ok((hp, p.out))
}

fn mlp_and_out<R: Read + Seek>(p: &mut Planner<'_, R>, q: &str, c: &str) -> Result<()> {
    p.map(
        &format!("{q}attn.out.weight"),
        &format!("{c}self_attention/linear_1/weight"),
    )?;
    p.map(
        &format!("{q}attn.out.bias"),
        &format!("{c}self_attention/linear_1/bias"),
    )?;
    mlp(p, q, c)
}

/// The feed-forward block, the same in encoder and decoder layers.
fn mlp<R: Read + Seek>(p: &mut Planner<'_, R>, q: &str, c: &str) -> Result<()> {
    p.map(
        &format!("{q}mlp_ln.weight"),
        &format!("{c}ffn/layer_norm/gamma"),
    )?;
    p.map(
        &format!("{q}mlp_ln.bias"),
        &format!("{c}ffn/layer_norm/beta"),
    )?;
    p.map(
        &format!("{q}mlp.0.weight"),
        &format!("{c}ffn/linear_0/weight"),
    )?;
    p.map(&format!("{q}mlp.0.bias"), &format!("{c}ffn/linear_0/bias"))?;
    p.map(
        &format!("{q}mlp.2.weight"),
        &format!("{c}ffn/linear_1/weight"),
    )?;
    p.map(&format!("{q}mlp.2.bias"), &format!("{c}ffn/linear_1/bias"))
}

fn w_i32<W: Write>(w: &mut W, v: i32, out: &Path) -> Result<()> {
    w.write_all(&v.to_le_bytes())
        .map_err(|e| ModelsError::io("write", out, e))
}

/// Convert from an open `model.bin` reader into `w`. `model_path` and `out_path` name the files in
/// errors only.
pub fn convert_whisper_to_writer<R: Read + Seek, W: Write>(
    r: &mut R,
    model_path: &Path,
    assets: &WhisperAssets,
    w: &mut W,
    out_path: &Path,
) -> Result<(WhisperHparams, usize)> {
    let model = Ct2Model::read_index(r, model_path)?;
    let (hp, tensors) = plan(&model, r)?;
    let filters = assets.mel_filters(hp.n_mels)?;
    let tokens = assets.tokens(hp.multilingual())?;

    let werr = |e| ModelsError::io("write", out_path, e);
    w_i32(w, GGML_MAGIC as i32, out_path)?;
    for v in hp.as_array() {
        w_i32(w, v, out_path)?;
    }
    for &d in &filters.shape {
        w_i32(w, d as i32, out_path)?;
    }
    let fbytes: Vec<u8> = filters.data.iter().flat_map(|x| x.to_le_bytes()).collect();
    w.write_all(&fbytes).map_err(werr)?;
    w_i32(w, tokens.len() as i32, out_path)?;
    for t in &tokens {
        w_i32(w, t.len() as i32, out_path)?;
        w.write_all(t).map_err(werr)?;
    }

    let mut inbuf = Vec::new();
    let mut outbuf = Vec::new();
    for t in &tensors {
        w_i32(w, t.shape.len() as i32, out_path)?;
        w_i32(w, t.name.len() as i32, out_path)?;
        w_i32(w, if t.f32_out { 0 } else { 1 }, out_path)?;
        for &d in t.shape.iter().rev() {
            w_i32(w, d as i32, out_path)?;
        }
        w.write_all(t.name.as_bytes()).map_err(werr)?;

        let part_bytes = t.var.nbytes / t.parts;
        let start = part_bytes * t.part;
        let elem = t.var.dtype.size();
        let mut done = 0u64;
        while done < part_bytes {
            let n = (part_bytes - done).min(COPY_CHUNK / elem * elem);
            inbuf.resize(n as usize, 0);
            model.read_range(r, &t.var, start + done, &mut inbuf)?;
            let bytes: &[u8] = match (t.var.dtype, t.f32_out) {
                (Ct2Dtype::F16, false) | (Ct2Dtype::F32, true) => &inbuf,
                (Ct2Dtype::F16, true) => {
                    outbuf.clear();
                    outbuf.extend(
                        inbuf
                            .chunks_exact(2)
                            .flat_map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32().to_le_bytes()),
                    );
                    &outbuf
                }
                (Ct2Dtype::F32, false) => {
                    outbuf.clear();
                    // Round to nearest even, as numpy's astype(float16).
                    outbuf.extend(inbuf.chunks_exact(4).flat_map(|c| {
                        f16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes()
                    }));
                    &outbuf
                }
                (other, _) => {
                    return Err(ModelsError::Ct2UnsupportedDtype {
                        name: t.var.name.clone(),
                        dtype: other.name().to_owned(),
                    })
                }
            };
            w.write_all(bytes).map_err(werr)?;
            done += n;
        }
    }
    Ok((hp, tensors.len()))
}

/// Convert `<ct2_dir>/model.bin` into `out` (written to `out.partial`, synced, then renamed, so a
/// crash never leaves a half-written model under the final name).
pub fn convert_whisper(
    ct2_dir: &Path,
    assets_dir: &Path,
    out: &Path,
) -> Result<(WhisperHparams, usize)> {
    let model_path = ct2_dir.join("model.bin");
    let f = File::open(&model_path).map_err(|e| ModelsError::io("open", &model_path, e))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    super::write_whole(out, |w| {
        convert_whisper_to_writer(&mut r, &model_path, &WhisperAssets::new(assets_dir), w, out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiktoken_lines() {
        let t = parse_tiktoken(b"IQ== 0\r\nIg== 1\n\nIw== 2").unwrap();
        assert_eq!(t, vec![b"!".to_vec(), b"\"".to_vec(), b"#".to_vec()]);
        assert!(parse_tiktoken(b"IQ==\n").is_err());
        assert!(parse_tiktoken(b"!!!! 0\n").is_err());
        // The multilingual vocabulary's empty token, as the reference (Python b64decode) reads it.
        assert_eq!(parse_tiktoken(b"= 50256\n").unwrap(), vec![Vec::<u8>::new()]);
    }
}

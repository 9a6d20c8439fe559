#pragma once
// Drawing a run of one sample's tokens on the CPU, as fast as the machine allows. The tokens are
// those of draw_token_block (model.hpp), bit for bit: the same Philox words, the same alias
// lookup. Only the schedule differs: with AVX2 or AVX-512 (chosen at run time) 8 or 16 Philox
// blocks run in the lanes of one register and the alias table is read with permutes, loads or
// gathers, 32 or 64 tokens per round, 3x or more the scalar rate. Drawing tokens is most of a step at small N,
// so this sets the engine's speed limit there (`scb bench` reports it as "limit").
#include <cstdint>

#include "scb/core/model.hpp"

namespace scb {

// Positions drawn per call by the engine's loops: the chunk's tokens stay in L1.
constexpr uint32_t kTokenChunk = 256;

// Tokens of positions t0 .. t0+n-1 (0-based; t0 a multiple of 4) of sample `sample` at `step`,
// with the fastest schedule this machine supports.
void draw_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0,
                 uint32_t n, uint32_t* out);

// Every token of samples sample0 .. sample0 + count - 1 (out[i * T + t]: position t of sample
// sample0 + i), for short samples: the AVX2 schedule fills its lanes across sample boundaries
// (when T is a multiple of 4), where draw_tokens of each sample would leave the last round of a
// sample part empty (at T = 100, 128 positions computed for 100). The AVX-512 schedule draws
// sample by sample.
constexpr uint32_t kSamplesPerDraw = 8;  // samples the engine draws together when T <= kTokenChunk
void draw_sample_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0, uint32_t count,
                        uint32_t* out);

// The same tokens as 16-bit values, as the engine keeps them (N <= 65,536): the AVX-512 schedule
// narrows them on its way to memory, the others draw 32-bit words and narrow them.
void draw_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0,
                 uint32_t n, uint16_t* out);
void draw_sample_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0, uint32_t count,
                        uint16_t* out);

// draw_sample_meta (model.hpp) of samples sample0 .. sample0 + count - 1 into out[0 .. count):
// with AVX-512 sixteen samples per Philox call (a short sample's meta draw, one scalar Philox
// call and two alias lookups, costs a tenth of its step at T = 100), else one by one.
constexpr uint32_t kMetasPerDraw = 16;  // samples whose metas the engine draws together
void draw_sample_metas(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0, uint32_t count,
                       SampleMeta* out);

// out[i] = x[i] for i < n, tokens below 65,536 (the engine keeps them as uint16; AVX2 where available).
void narrow_tokens(const uint32_t* x, uint32_t n, uint16_t* out);

// The schedules. Each gives the same tokens; draw_tokens picks the widest the CPU supports,
// capped by SCB_SIMD in the environment (read once: off, avx2 or avx512; avx2-loads and
// avx2-gather fix how AVX2 reads tables over 16 entries, which is otherwise timed once).
//   avx2, avx2_gather: tables of up to 16 entries in registers, larger ones by scalar loads
//   (avx2) or gathers (avx2_gather)
enum class DrawIsa { scalar, avx2, avx512, avx2_gather };
bool draw_isa_supported(DrawIsa isa);
void draw_tokens_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample,
                      uint32_t t0, uint32_t n, uint32_t* out);
void draw_sample_tokens_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                             uint32_t count, uint32_t* out);
void draw_tokens_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample,
                      uint32_t t0, uint32_t n, uint16_t* out);
void draw_sample_tokens_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                             uint32_t count, uint16_t* out);
void draw_sample_metas_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                            uint32_t count, SampleMeta* out);
DrawIsa token_draw_isa_used();
// Whether the CPU's hand-vectorised AVX2 loops run (tile sums, small-vocabulary scatter and
// gather, token narrowing): with any vector schedule of the token drawing, so SCB_SIMD=off turns
// every one of them off together (the golden.byte_identical_scalar test).
bool avx2_loops();
// Whether those loops take their AVX-512 forms (the AVX-512 schedule of the drawing runs;
// SCB_SIMD=avx2 keeps them at AVX2). Either form gives the same bits.
bool avx512_loops();
const char* draw_isa_name(DrawIsa isa);  // "avx512", "avx2", "avx2-gather" or "scalar"
const char* token_draw_isa();            // name of the schedule draw_tokens uses

}  // namespace scb

/**
 * A small ONNX reader and writer (docs/models.md). Shoal reads a model's signature — opsets, the
 * graph's inputs and outputs with their element types and shapes — at commit, before any runtime
 * loads it, so a malformed upload is refused with a field-level error; and the example loop
 * (examples/models) writes its PCA projections as ONNX with it. Both sides speak the protobuf wire
 * format directly (ONNX's `onnx.proto3`): the handful of messages involved do not justify a
 * protobuf dependency and its code generator.
 */
import { ValidationError } from '../errors.js';
import type { ModelDtype, ModelSignature, ModelTensorInfo } from '../service-types.js';

/** ONNX TensorProto.DataType values Shoal can feed or read. */
export const ONNX_DTYPES = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
} as const;
export type OnnxDtype = keyof typeof ONNX_DTYPES & ModelDtype;
const DTYPE_BY_CODE = new Map<number, OnnxDtype>(
  Object.entries(ONNX_DTYPES).map(([name, code]) => [code, name as OnnxDtype]),
);

/** One graph input or output (the API's type, so stored signatures and the reader agree). */
export type OnnxTensorInfo = ModelTensorInfo;
export type OnnxSignature = ModelSignature;

// --- wire format ------------------------------------------------------------------------------

class Writer {
  private chunks: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      out.push(byte);
    } while (v > 0n);
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number): this {
    this.tag(field, 0);
    this.varint(value);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.varint(value.length);
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

interface Field {
  field: number;
  wire: number;
  /** Varint value (wire 0), as a number: ONNX's int64 fields here (dims, versions) fit 53 bits. */
  int?: number;
  /** Length-delimited payload (wire 2). */
  bytes?: Uint8Array;
}

function bad(message: string, details?: Record<string, unknown>): ValidationError {
  return new ValidationError(`artifact is not a valid ONNX model: ${message}`, {
    field: 'artifact',
    ...(details ? { details } : {}),
  });
}

function* fields(buf: Uint8Array): Generator<Field> {
  let at = 0;
  const varint = (): number => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (at >= buf.length) throw bad('truncated varint');
      const byte = buf[at++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
      if (shift > 63n) throw bad('varint longer than 64 bits');
    }
    return Number(BigInt.asIntN(64, result));
  };
  while (at < buf.length) {
    const key = varint();
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) yield { field, wire, int: varint() };
    else if (wire === 2) {
      const len = varint();
      if (len < 0 || at + len > buf.length) throw bad('length-delimited field runs past the end');
      yield { field, wire, bytes: buf.subarray(at, at + len) };
      at += len;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw bad(`unsupported wire type ${wire}`);
    if (at > buf.length) throw bad('fixed-width field runs past the end');
  }
}

const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array());

// --- reading ----------------------------------------------------------------------------------

// Field numbers from onnx.proto3 (ModelProto, GraphProto, NodeProto, ValueInfoProto, TypeProto,
// TensorShapeProto, TensorProto, OperatorSetIdProto).
const MODEL = { irVersion: 1, producer: 2, graph: 7, opset: 8 };
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 };
const VALUE_INFO = { name: 1, type: 2 };
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9 };

function tensorInfo(buf: Uint8Array): OnnxTensorInfo {
  let name = '';
  let dtype: OnnxTensorInfo['dtype'] = 'unknown';
  const shape: Array<number | string> = [];
  for (const f of fields(buf)) {
    if (f.field === VALUE_INFO.name) name = text(f.bytes);
    else if (f.field === VALUE_INFO.type && f.bytes) {
      for (const t of fields(f.bytes)) {
        if (t.field !== 1 || !t.bytes) continue; // TypeProto.tensor_type
        for (const tt of fields(t.bytes)) {
          if (tt.field === 1 && tt.int !== undefined) dtype = DTYPE_BY_CODE.get(tt.int) ?? 'unknown';
          else if (tt.field === 2 && tt.bytes) {
            for (const dim of fields(tt.bytes)) {
              if (dim.field !== 1 || !dim.bytes) continue;
              let d: number | string = '?';
              for (const dv of fields(dim.bytes)) {
                if (dv.field === 1 && dv.int !== undefined) d = dv.int;
                else if (dv.field === 2) d = text(dv.bytes);
              }
              shape.push(d);
            }
          }
        }
      }
    }
  }
  return { name, dtype, shape };
}

/** Reads a model's signature; ValidationError (field `artifact`) when the bytes are not an ONNX model. */
export function readOnnxSignature(bytes: Uint8Array): OnnxSignature {
  let irVersion = 0;
  let producer: string | undefined;
  let graph: Uint8Array | undefined;
  const opsets: OnnxSignature['opsets'] = [];
  for (const f of fields(bytes)) {
    if (f.field === MODEL.irVersion && f.int !== undefined) irVersion = f.int;
    else if (f.field === MODEL.producer && f.wire === 2) producer = text(f.bytes);
    else if (f.field === MODEL.graph && f.bytes) graph = f.bytes;
    else if (f.field === MODEL.opset && f.bytes) {
      let domain = '';
      let version = 0;
      for (const o of fields(f.bytes)) {
        if (o.field === 1) domain = text(o.bytes);
        else if (o.field === 2 && o.int !== undefined) version = o.int;
      }
      opsets.push({ domain, version });
    }
  }
  if (!graph || irVersion <= 0 || opsets.length === 0) {
    throw bad('no graph, IR version or opset import (is it a model file at all?)');
  }
  const initializers = new Set<string>();
  let parameters = 0;
  const inputs: OnnxTensorInfo[] = [];
  const outputs: OnnxTensorInfo[] = [];
  const ops = new Set<string>();
  for (const f of fields(graph)) {
    if (!f.bytes) continue;
    if (f.field === GRAPH.initializer) {
      let name = '';
      let count = 1;
      for (const t of fields(f.bytes)) {
        if (t.field === TENSOR.name) name = text(t.bytes);
        else if (t.field === TENSOR.dims) {
          if (t.int !== undefined) count *= t.int;
          else if (t.bytes) for (const d of packedVarints(t.bytes)) count *= d;
        }
      }
      initializers.add(name);
      parameters += count;
    } else if (f.field === GRAPH.input) inputs.push(tensorInfo(f.bytes));
    else if (f.field === GRAPH.output) outputs.push(tensorInfo(f.bytes));
    else if (f.field === GRAPH.node) {
      for (const n of fields(f.bytes)) if (n.field === NODE.opType) ops.add(text(n.bytes));
    }
  }
  // Before IR 4, initializers were listed among the inputs too: they are not what a caller feeds.
  const fed = inputs.filter((i) => !initializers.has(i.name));
  if (fed.length === 0 || outputs.length === 0) throw bad('the graph has no inputs or no outputs');
  return {
    irVersion,
    opsets,
    ...(producer ? { producer } : {}),
    inputs: fed,
    outputs,
    ops: [...ops].sort(),
    parameters,
  };
}

function* packedVarints(buf: Uint8Array): Generator<number> {
  let at = 0;
  while (at < buf.length) {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buf[at++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
    }
    yield Number(BigInt.asIntN(64, result));
  }
}

// --- writing ----------------------------------------------------------------------------------

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  /** Integer or integer-list attributes (what the ops the example writes need). */
  attributes?: Record<string, number | number[]>;
}

export interface OnnxInitializer {
  name: string;
  dims: number[];
  /** float32 only: the example's weights. */
  data: Float32Array;
}

export interface OnnxGraphSpec {
  name: string;
  inputs: OnnxTensorInfo[];
  outputs: OnnxTensorInfo[];
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
  /** Default opset 17 (ONNX 1.12): every runtime Shoal supports runs it. */
  opset?: number;
  producer?: string;
  /** Key/value pairs stored in ModelProto.metadata_props (e.g. the training run). */
  metadata?: Record<string, string>;
}

function writeValueInfo(w: Writer, info: OnnxTensorInfo): void {
  w.string(VALUE_INFO.name, info.name);
  w.message(VALUE_INFO.type, (t) =>
    t.message(1, (tt) => {
      if (info.dtype === 'unknown') throw new Error(`tensor ${info.name}: dtype required`);
      tt.int(1, ONNX_DTYPES[info.dtype]);
      tt.message(2, (shape) => {
        for (const d of info.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

/** Serialises a graph as an ONNX model (IR version 8). */
export function writeOnnxModel(spec: OnnxGraphSpec): Uint8Array {
  const w = new Writer();
  w.int(MODEL.irVersion, 8);
  w.string(MODEL.producer, spec.producer ?? 'shoal');
  w.message(MODEL.graph, (g) => {
    for (const node of spec.nodes) {
      g.message(GRAPH.node, (n) => {
        for (const i of node.inputs) n.string(NODE.input, i);
        for (const o of node.outputs) n.string(NODE.output, o);
        n.string(NODE.name, node.name ?? `${node.op}_${node.outputs[0]}`);
        n.string(NODE.opType, node.op);
        for (const [name, value] of Object.entries(node.attributes ?? {})) {
          // AttributeProto: name 1, i 3, ints 8, type 20 (INT = 2, INTS = 7).
          n.message(NODE.attribute, (a) => {
            a.string(1, name);
            if (Array.isArray(value)) {
              for (const v of value) a.int(8, v);
              a.int(20, 7);
            } else {
              a.int(3, value);
              a.int(20, 2);
            }
          });
        }
      });
    }
    g.string(GRAPH.name, spec.name);
    for (const init of spec.initializers) {
      const expected = init.dims.reduce((a, b) => a * b, 1);
      if (expected !== init.data.length) {
        throw new Error(`initializer ${init.name}: dims ${init.dims.join('×')} but ${init.data.length} values`);
      }
      g.message(GRAPH.initializer, (t) => {
        for (const d of init.dims) t.int(TENSOR.dims, d);
        t.int(TENSOR.dataType, ONNX_DTYPES.float32);
        t.string(TENSOR.name, init.name);
        // raw_data is little-endian by the spec; copy so a view's offset cannot leak other bytes.
        const raw = new Uint8Array(init.data.length * 4);
        const view = new DataView(raw.buffer);
        for (let i = 0; i < init.data.length; i++) view.setFloat32(i * 4, init.data[i]!, true);
        t.bytes(TENSOR.rawData, raw);
      });
    }
    for (const i of spec.inputs) g.message(GRAPH.input, (v) => writeValueInfo(v, i));
    for (const o of spec.outputs) g.message(GRAPH.output, (v) => writeValueInfo(v, o));
  });
  w.message(MODEL.opset, (o) => {
    o.string(1, '');
    o.int(2, spec.opset ?? 17);
  });
  for (const [key, value] of Object.entries(spec.metadata ?? {})) {
    w.message(14, (m) => m.string(1, key).string(2, value)); // metadata_props: StringStringEntryProto
  }
  return w.finish();
}

/**
 * A linear embedding model: `(x − mean) · W`, optionally L2-normalised. It is what PCA (and any
 * linear projection) exports to: input `[batch, inputDim]` float32, output `[batch, outputDim]`.
 * `weights` is row-major `inputDim × outputDim`.
 */
export function linearProjectionModel(options: {
  inputDim: number;
  outputDim: number;
  weights: Float32Array;
  mean?: Float32Array;
  normalize?: boolean;
  inputName?: string;
  outputName?: string;
  name?: string;
  metadata?: Record<string, string>;
}): Uint8Array {
  const { inputDim, outputDim } = options;
  const input = options.inputName ?? 'input';
  const output = options.outputName ?? 'embedding';
  const nodes: OnnxNode[] = [];
  const initializers: OnnxInitializer[] = [{ name: 'W', dims: [inputDim, outputDim], data: options.weights }];
  let x = input;
  if (options.mean) {
    initializers.push({ name: 'mean', dims: [inputDim], data: options.mean });
    nodes.push({ op: 'Sub', inputs: [x, 'mean'], outputs: ['centered'] });
    x = 'centered';
  }
  nodes.push({ op: 'MatMul', inputs: [x, 'W'], outputs: [options.normalize ? 'projected' : output] });
  if (options.normalize) {
    nodes.push({ op: 'LpNormalization', inputs: ['projected'], outputs: [output], attributes: { axis: -1, p: 2 } });
  }
  return writeOnnxModel({
    name: options.name ?? 'linear-projection',
    inputs: [{ name: input, dtype: 'float32', shape: ['batch', inputDim] }],
    outputs: [{ name: output, dtype: 'float32', shape: ['batch', outputDim] }],
    nodes,
    initializers,
    ...(options.metadata ? { metadata: options.metadata } : {}),
  });
}

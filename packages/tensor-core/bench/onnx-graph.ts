// A few lines of protobuf: builds single-node ONNX models (MatMul, Conv, Gelu) with dynamic float inputs, so
// onnxruntime-web can run the benchmark shapes without the Python onnx package. Field numbers from
// onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, ValueInfoProto, TypeProto).

type Field = [num: number, value: number | string | Uint8Array];

function varint(n: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

/** Encodes fields in order: numbers as varints (wire type 0), strings and messages length-delimited (2). */
function msg(fields: Field[]): Uint8Array {
  const bytes: number[] = [];
  for (const [num, v] of fields) {
    if (typeof v === 'number') bytes.push(...varint(num << 3), ...varint(v));
    else {
      const body = typeof v === 'string' ? new TextEncoder().encode(v) : v;
      bytes.push(...varint((num << 3) | 2), ...varint(body.length), ...body);
    }
  }
  return Uint8Array.from(bytes);
}

const FLOAT = 1;

function valueInfo(name: string, shape: readonly number[]): Uint8Array {
  const dims = shape.map((d): Field => [1, msg([[1, d]])]);
  const tensorType = msg([
    [1, FLOAT],
    [2, msg(dims)],
  ]);
  return msg([
    [1, name],
    [2, msg([[1, tensorType]])],
  ]);
}

function intsAttr(name: string, ints: readonly number[]): Uint8Array {
  return msg([[1, name], ...ints.map((i): Field => [8, i]), [20, 7]]);
}

/** One-node model: `op` over inputs → output "y". */
export function onnxModel(
  op: 'MatMul' | 'Conv' | 'Gelu',
  inputs: [string, readonly number[]][],
  output: readonly number[],
  attrs: [string, readonly number[]][] = [],
  opset = 13,
): Uint8Array {
  const node = msg([
    ...inputs.map(([n]): Field => [1, n]),
    [2, 'y'],
    [3, 'n0'],
    [4, op],
    ...attrs.map(([n, v]): Field => [5, intsAttr(n, v)]),
  ]);
  const graph = msg([
    [1, node],
    [2, 'bench'],
    ...inputs.map(([n, s]): Field => [11, valueInfo(n, s)]),
    [12, valueInfo('y', output)],
  ]);
  return msg([
    [1, 7],
    [7, graph],
    [
      8,
      msg([
        [1, ''],
        [2, opset],
      ]),
    ],
  ]);
}

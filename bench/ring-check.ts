// Ring correctness as the benchmarks measure it: every node's two neighbours per side are
// the true ones (what crawl's Consistency 1.0 means).
import type { Node } from '../src/node/node.js';

/** How many nodes have a nearest or second-nearest neighbour (either side) that is not the true one. */
export function wrongNeighbours(nodes: Node[]): number {
  const sorted = [...nodes].sort((a, b) => (a.address.value < b.address.value ? -1 : 1));
  const n = sorted.length;
  return sorted.filter((node, i) => {
    const nb = node.table.neighborsOf(node.address, 2);
    const k = (j: number) => sorted[(i + j + n) % n]!.address.key;
    return !(nb.left[0]?.address.key === k(1) && nb.left[1]?.address.key === k(2) && nb.right[0]?.address.key === k(-1) && nb.right[1]?.address.key === k(-2));
  }).length;
}

export function consistent(nodes: Node[]): boolean {
  return wrongNeighbours(nodes) === 0;
}

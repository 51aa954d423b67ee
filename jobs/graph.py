"""A job's DAG laid out for drawing: one row per depth, top to bottom, so a pipeline reads like a
list on a phone and like a diagram on a wide screen. Pure layout, no HTML."""

from __future__ import annotations

from dataclasses import dataclass

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 230, 54, 24, 34, 8


@dataclass
class Box:
    id: str
    title: str
    component: str
    x: int
    y: int
    w: int = NODE_W
    h: int = NODE_H

    @property
    def cx(self) -> int:
        return self.x + self.w // 2

    @property
    def half(self) -> int:
        return self.w // 2

    @property
    def bar_y(self) -> int:
        return self.h - 8


@dataclass
class Edge:
    source: str
    target: str
    path: str


def upstream(node: dict) -> list[str]:
    """The nodes of the same job whose outputs this node reads."""
    return [ref["node"] for ref in (node.get("inputs") or {}).values()
            if isinstance(ref, dict) and "node" in ref and "job" not in ref]


def layout(nodes: list[dict], titles: dict[str, str] | None = None) -> dict:
    """{"boxes", "edges", "width", "height"} for ``nodes`` (spec nodes, in order)."""
    titles = titles or {}
    depth: dict[str, int] = {}
    for node in nodes:  # specs list a node after the nodes it reads (validated in jobs/spec.py)
        depth[node["id"]] = 1 + max((depth.get(u, 0) for u in upstream(node)), default=-1)
    rows: dict[int, list[dict]] = {}
    for node in nodes:
        rows.setdefault(depth[node["id"]], []).append(node)
    widest = max((len(r) for r in rows.values()), default=1)
    width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X
    boxes = {}
    for level, row in sorted(rows.items()):
        row_width = len(row) * NODE_W + (len(row) - 1) * GAP_X
        left = (width - row_width) // 2
        for i, node in enumerate(row):
            boxes[node["id"]] = Box(node["id"], titles.get(node["id"], node["id"]), node.get("component", ""),
                                    left + i * (NODE_W + GAP_X), PAD + level * (NODE_H + GAP_Y))
    edges = []
    for node in nodes:
        target = boxes[node["id"]]
        for source_id in upstream(node):
            source = boxes.get(source_id)
            if source is None:
                continue
            y1, y2 = source.y + source.h, target.y
            middle = (y1 + y2) // 2
            edges.append(Edge(source_id, node["id"],
                              f"M{source.cx},{y1} C{source.cx},{middle} {target.cx},{middle} {target.cx},{y2 - 4}"))
    height = PAD * 2 + (max(rows, default=0) + 1) * (NODE_H + GAP_Y) - GAP_Y
    return {"boxes": list(boxes.values()), "edges": edges, "width": width, "height": height}

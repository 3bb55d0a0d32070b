"""The conjugate-gradient solver of label propagation: ``M X = B`` for the sparse symmetric
positive definite ``M = I - alpha S``, one solve per column, in blocks of columns, with the
products and vector updates as compiled loops (numba, when it loads; scipy and numpy
otherwise). Used by :mod:`~workbench.learn.propagate`."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["block_cg", "cg_steps", "col_dot", "kernels", "matmul"]


def block_cg(
    m: sp.csr_matrix, b: np.ndarray, x: np.ndarray, *, tol: float, max_iter: int
) -> tuple[np.ndarray, int, bool]:
    """Conjugate gradients on ``M X = B`` (``M = I - alpha S``), one solve per column.

    Works in the dtype of ``b``, updating in place to avoid (N, C) temporaries. Each start
    column is first rescaled to the best multiple of itself (in the energy norm that CG
    minimises): after a label change, class mass normalisation rescales every class's seeds,
    and the rescaled previous answer is then right everywhere but near the new labels. Only
    the columns not already within ``tol`` are iterated (after one more label, a few).
    """
    dtype = b.dtype.type
    mx = matmul(m, x)
    xmx = col_dot(x, mx)
    gamma = np.divide(col_dot(b, x), xmx, out=np.ones_like(xmx), where=xmx > 0)
    gamma = gamma.astype(dtype)
    x *= gamma
    mx *= gamma
    r = np.subtract(b, mx, out=mx)
    rs = col_dot(r, r)
    target = (tol * np.linalg.norm(b, axis=0).astype(np.float64)) ** 2
    active = np.flatnonzero(rs > target)
    if active.size == 0:
        return x, 0, True
    if active.size == x.shape[1]:
        n_iter, converged = cg_steps(m, x, r, rs, target, max_iter)
        return x, n_iter, converged
    xa, ra = x[:, active], r[:, active]  # contiguous copies of the columns still to solve
    n_iter, converged = cg_steps(m, xa, ra, rs[active], target[active], max_iter)
    x[:, active] = xa
    return x, n_iter, converged


def col_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(C,) float64 column-wise dot products of two (N, C) arrays (summed in their dtype:
    float32 sums are accurate to ~1e-5 relative here, well inside what CG needs)."""
    return np.einsum("ij,ij->j", a, b).astype(np.float64)


def cg_steps(
    m: sp.csr_matrix, x: np.ndarray, r: np.ndarray, rs: np.ndarray, target: np.ndarray,
    max_iter: int,
) -> tuple[int, bool]:
    """CG iterations from ``x`` with residual ``r`` (both updated in place)."""
    compiled = kernels()
    if compiled is not None and x.dtype == m.dtype and x.flags.c_contiguous \
            and r.flags.c_contiguous:
        return cg_steps_compiled(compiled, m, x, r, rs, target, max_iter)
    dtype = x.dtype.type
    p = r.copy()
    tmp = np.empty_like(r)
    mp = np.empty_like(r)
    for it in range(1, max_iter + 1):
        if np.all(rs <= target):
            return it - 1, True
        matmul(m, p, out=mp)
        denom = col_dot(p, mp)
        step = np.divide(rs, denom, out=np.zeros_like(rs), where=denom > 0).astype(dtype)
        np.multiply(p, step, out=tmp)
        x += tmp
        np.multiply(mp, step, out=tmp)
        r -= tmp
        rs_new = col_dot(r, r)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0).astype(dtype)
        p *= beta
        p += r
        rs = rs_new
    return max_iter, bool(np.all(rs <= target))


def cg_steps_compiled(
    loops: dict, m: sp.csr_matrix, x: np.ndarray, r: np.ndarray, rs: np.ndarray,
    target: np.ndarray, max_iter: int,
) -> tuple[int, bool]:
    """:func:`cg_steps` with each iteration as three passes over the (N, w) arrays: the
    product fused with ``p . Mp``, the updates of ``x`` and ``r`` fused with ``r . r``, and
    the new direction (numpy makes ~10 passes; they cost 40% of the solve at 1,000 classes).
    Column sums are accumulated in float64."""
    dtype = x.dtype.type
    p = r.copy()
    mp = np.empty_like(r)
    denom = np.empty(x.shape[1], np.float64)
    rs_new = np.empty(x.shape[1], np.float64)
    for it in range(1, max_iter + 1):
        if np.all(rs <= target):
            return it - 1, True
        loops["product_dot"](m.indptr, m.indices, m.data, p, mp, denom)
        step = np.divide(rs, denom, out=np.zeros_like(rs), where=denom > 0).astype(dtype)
        loops["update"](x, r, p, mp, step, rs_new)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0).astype(dtype)
        loops["direction"](p, r, beta)
        rs = rs_new.copy()
    return max_iter, bool(np.all(rs <= target))


def matmul(m: sp.csr_matrix, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``m @ x`` for a CSR (N, N) ``m`` and a C-ordered (N, w) ``x`` of the same dtype.

    scipy's product runs one scalar multiply-add at a time (1.5 G/s here, whatever the
    width); the compiled loop does each neighbour's row of ``w`` columns as one vector
    operation (2.7 times faster at 64 columns), releases the GIL (the retrain runs beside
    the notebook) and writes into ``out`` (no new (N, w) array per iteration). Falls back
    to scipy where numba (a dependency of umap-learn) cannot be loaded.
    """
    compiled = kernels()
    if out is None:
        out = np.empty(x.shape, x.dtype)
    if compiled is None or x.dtype != m.dtype or not x.flags.c_contiguous:
        out[...] = m @ x
        return out
    compiled["product"](m.indptr, m.indices, m.data, x, out)
    return out


KERNELS: list = []


def kernels() -> dict | None:
    """The compiled loops (compiled once, cached on disk), or None without numba."""
    if not KERNELS:
        try:
            import numba
        except Exception:  # any failure to load numba means: use scipy and numpy
            KERNELS.append(None)
        else:
            KERNELS.append(_compile(numba))
    return KERNELS[0]


def _compile(numba) -> dict:  # pragma: no cover - compiled code
    jit = numba.njit(nogil=True, fastmath=True, cache=True)

    @jit
    def product(indptr, indices, data, x, out):
        n, w = out.shape
        for i in range(n):
            for k in range(w):
                out[i, k] = 0
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                a = data[jj]
                for k in range(w):
                    out[i, k] += a * x[j, k]

    @jit
    def product_dot(indptr, indices, data, p, out, dots):
        n, w = out.shape
        for k in range(w):
            dots[k] = 0.0
        for i in range(n):
            for k in range(w):
                out[i, k] = 0
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                a = data[jj]
                for k in range(w):
                    out[i, k] += a * p[j, k]
            for k in range(w):
                dots[k] += np.float64(p[i, k]) * np.float64(out[i, k])

    @jit
    def update(x, r, p, mp, step, rs):
        n, w = x.shape
        for k in range(w):
            rs[k] = 0.0
        for i in range(n):
            for k in range(w):
                x[i, k] += step[k] * p[i, k]
                r[i, k] -= step[k] * mp[i, k]
                rs[k] += np.float64(r[i, k]) * np.float64(r[i, k])

    @jit
    def direction(p, r, beta):
        n, w = p.shape
        for i in range(n):
            for k in range(w):
                p[i, k] = beta[k] * p[i, k] + r[i, k]

    return {"product": product, "product_dot": product_dot, "update": update,
            "direction": direction}

#!/usr/bin/env python3
# Derives the coefficients of tandem's vectorised exp (include/tandem/core/logits.hpp,
# detail::exp_reduced). Run: python3 tools/fit_exp_polynomial.py (no third-party module).
# Fits q(r) ~ (exp(r) - 1 - r) / r^2 on [-ln2/2, ln2/2], degree 5, minimising the relative
# error of exp(r) = 1 + r + r^2 q(r): weighted least squares, then Lawson iterations
# (iteratively reweighted) towards the minimax solution. Plain Python, doubles.
import math, struct
h = math.log(2) / 2
N = 4000
xs = [h * math.cos(math.pi * (i + 0.5) / N) for i in range(N)]  # Chebyshev nodes
deg = 5
s = h
def f(r):
    return (math.expm1(r) - r) / (r * r)
def solve(A, b):
    n = len(b)
    M = [row[:] + [b[i]] for i, row in enumerate(A)]
    for c in range(n):
        p = max(range(c, n), key=lambda i: abs(M[i][c]))
        M[c], M[p] = M[p], M[c]
        for i in range(c + 1, n):
            k = M[i][c] / M[c][c]
            for j in range(c, n + 1):
                M[i][j] -= k * M[c][j]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (M[i][n] - sum(M[i][j] * x[j] for j in range(i + 1, n))) / M[i][i]
    return x
def fit(lw):
    A = [[0.0] * (deg + 1) for _ in range(deg + 1)]
    b = [0.0] * (deg + 1)
    for r, l in zip(xs, lw):
        w = (r * r / math.exp(r)) ** 2 * l  # relative error of exp
        basis = [(r / s) ** k for k in range(deg + 1)]
        for i in range(deg + 1):
            b[i] += w * basis[i] * f(r)
            for j in range(deg + 1):
                A[i][j] += w * basis[i] * basis[j]
    c = solve(A, b)
    return [c[k] / s ** k for k in range(deg + 1)]
def relerr(c):
    out = []
    for r in xs:
        q = 0.0
        for ck in reversed(c):
            q = q * r + ck
        out.append(abs((1 + r + r * r * q) - math.exp(r)) / math.exp(r))
    return out
lw = [1.0] * N
for it in range(60):
    c = fit(lw)
    e = relerr(c)
    tot = sum(l * ei for l, ei in zip(lw, e))
    lw = [l * ei / tot for l, ei in zip(lw, e)]
    lw = [max(l, 1e-300) for l in lw]
c = fit(lw)
f32 = [struct.unpack('f', struct.pack('f', ck))[0] for ck in c]
print('max rel err (double coeffs)', max(relerr(c)))
print('max rel err (float coeffs)', max(relerr(f32)))
for k, ck in enumerate(f32):
    print('c%d = %.10e' % (k, ck))

"""How the process runs the kernels: threads and SIMD level (``settings``),
NumPy's BLAS threads during training (``blas``), the glibc allocator setting
(``allocator``) and the random state of seeds (``random``)."""

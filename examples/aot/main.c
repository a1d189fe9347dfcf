/* Calls relax and its gradient, compiled ahead of time by cotan, from C.
 * No Python at run time: the libraries need only libc/libm (libmvec). */
#include <stdio.h>
#include <stdint.h>

#include "librelax.h"
#include "libgrad_relax.h"

int main(void) {
    double x[8], k[8], energy, dx[8];
    for (int i = 0; i < 8; i++) {
        x[i] = 0.1 + 1.4 * i / 7.0;     /* np.linspace(0.1, 1.5, 8) */
        k[i] = 1.0 + 1.0 * i / 7.0;     /* np.linspace(1.0, 2.0, 8) */
    }
    const void *inputs[] = {x, k};
    const int64_t shapes[] = {8, 8};    /* the dimensions of x, then of k */

    void *outputs[] = {&energy};
    if (relax(inputs, shapes, outputs) != COTAN_OK) {
        fprintf(stderr, "relax failed: %s\n", relax_last_error());
        return 1;
    }
    void *grad_outputs[] = {dx};
    if (grad_relax(inputs, shapes, grad_outputs) != COTAN_OK) {
        fprintf(stderr, "grad_relax failed: %s\n", grad_relax_last_error());
        return 1;
    }
    printf("relax %.17g\n", energy);
    printf("grad_relax");
    for (int i = 0; i < 8; i++)
        printf(" %.17g", dx[i]);
    printf("\n");

    /* a wrong shape is reported, not a crash */
    const int64_t bad[] = {7, 8};
    int status = relax(inputs, bad, outputs);
    printf("bad shape: status %d: %s\n", status, relax_last_error());
    return 0;
}

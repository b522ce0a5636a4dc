/* Memory fences and a futex doorbell for the shared-memory ring (protocol in ring.py).
 *
 * Python has no fence of its own. On x86-64 the fences compile to nothing but a compiler
 * barrier (TSO already orders what the ring needs); on ARM64 they are `dmb ish` /
 * `dmb ishld`, without which a reader could see a slot's new data before the counter
 * that guards it.
 *
 * On Linux, wait() and wake() let a reader sleep on the ring's write sequence and be woken
 * by the writer's next publish, without polling: the kernel compares the word with the
 * value the reader last saw, so a publish between the reader's check and its sleep is
 * never missed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>

#ifdef __linux__
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

static PyObject *release(PyObject *self, PyObject *unused) {
    atomic_thread_fence(memory_order_release);
    Py_RETURN_NONE;
}

static PyObject *acquire(PyObject *self, PyObject *unused) {
    atomic_thread_fence(memory_order_acquire);
    Py_RETURN_NONE;
}

#ifdef __linux__
/* The address of an aligned 32-bit word inside a writable buffer. The buffer is released
 * before any blocking: a futex only reads the word when the call starts. */
static uint32_t *word_at(PyObject *args, unsigned int *expected, double *timeout) {
    Py_buffer view;
    Py_ssize_t offset;
    if (expected) {
        if (!PyArg_ParseTuple(args, "w*nId", &view, &offset, expected, timeout)) return NULL;
    } else if (!PyArg_ParseTuple(args, "w*n", &view, &offset)) {
        return NULL;
    }
    char *base = (char *)view.buf;
    Py_ssize_t length = view.len;
    PyBuffer_Release(&view);
    if (offset < 0 || offset + 4 > length || (offset & 3)) {
        PyErr_SetString(PyExc_ValueError, "futex word outside the buffer or not aligned");
        return NULL;
    }
    return (uint32_t *)(base + offset);
}

static PyObject *wait(PyObject *self, PyObject *args) {
    unsigned int expected;
    double timeout;
    uint32_t *word = word_at(args, &expected, &timeout);
    if (!word) return NULL;
    struct timespec ts = {(time_t)timeout, (long)((timeout - (time_t)timeout) * 1e9)};
    Py_BEGIN_ALLOW_THREADS
    syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *wake(PyObject *self, PyObject *args) {
    uint32_t *word = word_at(args, NULL, NULL);
    if (!word) return NULL;
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    Py_RETURN_NONE;
}
#endif

static PyMethodDef methods[] = {
    {"release", release, METH_NOARGS, "Order earlier loads and stores before later stores."},
    {"acquire", acquire, METH_NOARGS, "Order earlier loads before later loads and stores."},
#ifdef __linux__
    {"wait", wait, METH_VARARGS, "wait(buffer, offset, expected, timeout_s): sleep while the word equals expected."},
    {"wake", wake, METH_VARARGS, "wake(buffer, offset): wake every waiter on the word."},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fence", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fence(void) { return PyModule_Create(&module); }

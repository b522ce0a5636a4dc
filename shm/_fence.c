/* Memory fences for the shared-memory ring (see ring.py for the protocol).
 *
 * Python has no fence of its own. On x86-64 these compile to nothing but a compiler
 * barrier (TSO already orders what the ring needs); on ARM64 they are `dmb ish` /
 * `dmb ishld`, without which a reader could see a slot's new data before the counter
 * that guards it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>

static PyObject *release(PyObject *self, PyObject *unused) {
    atomic_thread_fence(memory_order_release);
    Py_RETURN_NONE;
}

static PyObject *acquire(PyObject *self, PyObject *unused) {
    atomic_thread_fence(memory_order_acquire);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"release", release, METH_NOARGS, "Order earlier loads and stores before later stores."},
    {"acquire", acquire, METH_NOARGS, "Order earlier loads before later loads and stores."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fence", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fence(void) { return PyModule_Create(&module); }

// Every test file runs on the backend the project would use (DCF_BACKEND, default auto):
// the native TensorFlow library, so that tests exercise the real kernels.
import { initBackend } from '../lib/runtime/backend';

initBackend();

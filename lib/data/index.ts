/** lib/data: CIFAR-10: provisioning, the binary files, tensors and batches. */
export * from './batches';
export * from './cifar10';
export * from './cifar10-files';
export * from './cifar10-provision';

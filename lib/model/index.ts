/** lib/model: The network: ResNet-18 stem + layer1, the dynamic and static heads, pretrained weights. */
export * from './adapter';
export * from './architecture';
export * from './model';
export * from './resnet';
export * from './weights';

// Types of bodies.mjs (plain JavaScript, so that the naive proxy and the upstream load it without a build).
export declare const SMALL: string
export declare const ORDER_2K: string
export declare const ITEMS_4K: string

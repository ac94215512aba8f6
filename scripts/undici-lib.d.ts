// undici's lib/ files carry no types of their own (scripts/undici-parts.js);
// src/ is typed by the package's index.
declare module 'undici/lib/*';

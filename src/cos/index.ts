export { CardMuteError, type SimCard } from "./card.ts";

import { Target } from "../../components";
import { StackConfig } from "../config";
import { standardPreset } from "./standard";

/**
 * The shop's schema, created once on the first primary. Orders and their items are written on the primary; the
 * read-replica indexes serve a user's order history (user_id, created_at), the fulfilment queue (status) and an
 * order's items (order_id). `updated_at` follows every update (a trigger in PostgreSQL, ON UPDATE in MySQL).
 */
export const ECOMMERCE_SCHEMA = {
    postgres: `CREATE TABLE IF NOT EXISTS orders (
  id bigserial PRIMARY KEY,
  user_id bigint NOT NULL,
  total_amount numeric(10,2) NOT NULL DEFAULT 0 CHECK (total_amount >= 0),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'shipped', 'delivered')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS order_items (
  id bigserial PRIMARY KEY,
  order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  product_id bigint NOT NULL,
  quantity integer NOT NULL CHECK (quantity > 0),
  price numeric(10,2) NOT NULL CHECK (price >= 0)
);
CREATE INDEX IF NOT EXISTS orders_user_created ON orders (user_id, created_at);
CREATE INDEX IF NOT EXISTS orders_status ON orders (status);
CREATE INDEX IF NOT EXISTS order_items_order ON order_items (order_id);
CREATE OR REPLACE FUNCTION orders_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS orders_touch ON orders;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_touch();
`,
    mysql: `CREATE TABLE IF NOT EXISTS orders (
  id bigint AUTO_INCREMENT PRIMARY KEY,
  user_id bigint NOT NULL,
  total_amount decimal(10,2) NOT NULL DEFAULT 0 CHECK (total_amount >= 0),
  status enum('pending', 'processing', 'shipped', 'delivered') NOT NULL DEFAULT 'pending',
  created_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  INDEX orders_user_created (user_id, created_at),
  INDEX orders_status (status)
);
CREATE TABLE IF NOT EXISTS order_items (
  id bigint AUTO_INCREMENT PRIMARY KEY,
  order_id bigint NOT NULL,
  product_id bigint NOT NULL,
  quantity int NOT NULL CHECK (quantity > 0),
  price decimal(10,2) NOT NULL CHECK (price >= 0),
  INDEX order_items_order (order_id),
  FOREIGN KEY (order_id) REFERENCES orders (id)
);
`,
};

/**
 * The e-commerce HA preset: the shop's schema on the engine(s) `hadb:engine` names, each as an HA cluster behind
 * HAProxy with the read-replica fleet the stack sizes (an analytics replica serves the reporting queries). The
 * stack's own `*BootstrapSql` runs after the schema (seed data, extra tables).
 */
export function ecommercePreset(config: StackConfig, target: Target) {
    const withSchema = (schema: string, extra?: string) => [schema, extra].filter(Boolean).join("\n");
    return standardPreset(
        {
            ...config,
            postgres: { ...config.postgres, bootstrapSql: withSchema(ECOMMERCE_SCHEMA.postgres, config.postgres.bootstrapSql) },
            mysql: { ...config.mysql, bootstrapSql: withSchema(ECOMMERCE_SCHEMA.mysql, config.mysql.bootstrapSql) },
        },
        target,
    );
}

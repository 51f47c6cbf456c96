import { Type } from 'class-transformer';
import {
  ArrayMaxSize, ArrayMinSize, IsArray, IsEmail, IsInt, IsString, Length, Matches, Max, MaxLength, Min, ValidateNested,
} from 'class-validator';

export class OrderItemDto {
  @IsString()
  @Length(1, 64)
  sku: string;

  @IsString()
  @Length(1, 200)
  name: string;

  /** Minor units (cents). */
  @IsInt()
  @Min(0)
  @Max(99_999_999)
  unitAmount: number;

  @IsInt()
  @Min(1)
  @Max(10_000)
  quantity: number;
}

export class CreateOrderDto {
  /** Lower-case ISO 4217 code, as Stripe writes it. */
  @IsString()
  @Matches(/^[a-z]{3}$/, { message: 'currency must be a lower-case ISO 4217 code such as "usd"' })
  currency: string;

  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => OrderItemDto)
  items: OrderItemDto[];

  @IsEmail({}, { message: 'customerEmail must be an email address' })
  @MaxLength(254)
  customerEmail: string;
}
